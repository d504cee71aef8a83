using FluentAssertions;
using Sd35.Errors;
using Sd35.Hosting;
using Sd35.Mesh;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Pipeline;

/// <summary>
/// The front door: <see cref="PipelineSettings"/> through <see cref="PipelineFactory"/> gives the pipeline a program
/// would wire by hand; what cannot run fails at build time, one line naming the option or file; and the one mapping
/// from option texts (<see cref="PipelineSettingOptions"/>) sets each field.
/// </summary>
public sealed class PipelineFactoryTests
{
    /// <summary>A test host is left as it is: no CPU runtime switches, NNPACK untouched; fp32 compute, as the goldens (not the CPU's measured choice).</summary>
    static readonly PipelineSettings Settings = new() { Process = ProcessSetup.HostAsIs, ComputeDType = ScalarType.Float32 };

    static readonly GenerationRequest Request = new() { Prompt = "a red cube", Steps = 2, Width = 32, Height = 32, MaxSequenceLength = 16, GuidanceScale = 4.5, Seed = 3 };

    [Theory]
    [InlineData("n150_cfg1_sp1_tp1")]
    [InlineData("n300_cfg1_sp1_tp2")]
    public void Built_through_the_factory_is_the_hand_wired_pipeline_to_the_bit(string configId)
    {
        var config = ParallelConfig.Parse(configId);
        using var byHand = new StableDiffusion3Pipeline(BuiltInComponents.Load(), ScalarType.Float32, new PipelineOptions { Parallel = config });
        using var built = PipelineFactory.Create(Settings with { Parallel = config }, out var report);

        using var expected = byHand.Generate(Request);
        using var actual = built.Generate(Request);

        actual.Image.eq(expected.Image).all().item<bool>().Should().BeTrue("the factory adds checks and set-up, never a different computation");
        built.Residency.Should().Be(ModelResidency.Staged);
        report.Runtime.Should().Contain("libtorch");
        report.PreflightSeconds.Should().BePositive();
    }

    [Fact]
    public void A_damaged_checkpoint_fails_when_the_pipeline_is_built_naming_the_file()
    {
        using var model = new TinyModelCopy();
        var weights = Path.Combine(model.Transformer, "diffusion_pytorch_model.safetensors");
        using (var stream = new FileStream(weights, FileMode.Open)) stream.SetLength(stream.Length - 7);

        var act = () => PipelineFactory.Create(Settings with { Source = new ModelSource { Model = model.Root } });

        act.Should().Throw<CheckpointException>().Which.File.Should().Be(weights);
    }

    [Fact]
    public void Quantization_and_a_compute_dtype_apart_from_the_weights_build_the_chosen_precision()
    {
        using var quantized = PipelineFactory.Create(Settings with { Quantization = GgmlType.Q8_0 });
        quantized.Precision.Should().Be(new PipelinePrecision(ScalarType.Float32, ScalarType.Float32,
            new WeightStorage { WeightDType = ScalarType.Float32, Quantize = GgmlType.Q8_0 }));
        using var bf16Weights = PipelineFactory.Create(Settings with { WeightDType = ScalarType.BFloat16 });
        (bf16Weights.Precision.Compute, bf16Weights.Precision.Storage.WeightDType).Should().Be((ScalarType.Float32, ScalarType.BFloat16));
        using var bf16Compute = PipelineFactory.Create(Settings with { ComputeDType = ScalarType.BFloat16 });
        (bf16Compute.Precision.Compute, bf16Compute.Precision.Vae, bf16Compute.Precision.Storage.WeightDType).Should().Be((ScalarType.BFloat16, ScalarType.BFloat16, ScalarType.Float32));
    }

    [Fact]
    public void Without_a_compute_dtype_the_cpu_measurement_chooses_and_is_reported()
    {
        using var pipeline = PipelineFactory.Create(Settings with { ComputeDType = null, Quantization = GgmlType.Q4_0 });
        var measured = pipeline.Precision.Measured;
        measured.Should().NotBeNull();
        (pipeline.Precision.Compute, pipeline.Precision.Vae).Should().Be((measured!.Gemm, measured.Conv));
        pipeline.Precision.ToString().Should().Contain("measured: GEMM").And.Contain("quantized Q4_0");
    }

    [Fact]
    public void A_quantized_generation_through_the_factory_is_close_to_full_precision()
    {
        using var full = PipelineFactory.Create(Settings);
        using var quantized = PipelineFactory.Create(Settings with { Quantization = GgmlType.Q8_0 });
        using var expected = full.Generate(Request);
        using var actual = quantized.Generate(Request);
        // The tiny model's image after two steps, Q8_0 weights (transformer and text encoders) against fp32.
        AssertQuality.Close(expected.Image, actual.Image, 0.999, 0.05, "Q8_0 pipeline against fp32");
    }

    [Fact]
    public void A_broken_single_file_or_a_component_file_without_a_model_fails_in_one_line_naming_it()
    {
        using var dir = new TempDirectory();
        var file = dir.File("sd3.5_large.safetensors");
        File.WriteAllBytes(file, [0]);

        FluentActions.Invoking(() => PipelineComponents.From(new ModelSource { Model = file }))
            .Should().Throw<Sd35.Errors.Sd35Exception>().Which.Message.Should().Contain(file).And.NotContain("\n");
        FluentActions.Invoking(() => PipelineComponents.From(new ModelSource { T5 = file }))
            .Should().Throw<ModelFolderException>().Which.Message.Should().Contain("give the model folder or single file too");
    }

    [Fact]
    public void Option_texts_map_onto_the_settings_through_one_mapping()
    {
        using var dir = new TempDirectory();
        var texts = new Dictionary<string, string>
        {
            ["model"] = dir.Path, ["parallel"] = "t3k_cfg2_sp2_tp2", ["device"] = "CPU", ["bf16"] = "true", ["models"] = "resident", ["quantize"] = "Q4_0",
            ["compute-dtype"] = "auto",
        };
        var settings = PipelineSettingOptions.Read(name => texts.GetValueOrDefault(name), Settings);

        settings.Source.Should().Be(new ModelSource { Model = dir.Path });
        settings.Parallel.Should().Be(ParallelConfig.Parse("t3k_cfg2_sp2_tp2"));
        (settings.Device, settings.WeightDType, settings.Residency, settings.Quantization).Should().Be((ComputeDevice.Cpu, ScalarType.BFloat16, ModelResidency.Resident, GgmlType.Q4_0));
        settings.ComputeDType.Should().BeNull("auto: the CPU's measurement decides");
        settings.Process.Should().Be(ProcessSetup.HostAsIs, "what is not given keeps the front-end's default");
    }

    [Theory]
    [InlineData("parallel", "t3k_cfg9", "--parallel 't3k_cfg9': ")]
    [InlineData("device", "tpu", "--device 'tpu': must be cpu or cuda")]
    [InlineData("models", "cached", "--models 'cached': must be resident or staged")]
    [InlineData("compute-dtype", "float8", "--compute-dtype 'float8': must be float32 or bfloat16 or auto")]
    [InlineData("quantize", "7", "--quantize '7': is not a quantization this build holds weights in; supported: q8_0, q5_0, q5_1, q4_0, q4_1")]
    [InlineData("quantize", "q4_k", "--quantize 'q4_k': is not a quantization this build holds weights in; supported: q8_0, q5_0, q5_1, q4_0, q4_1")]
    [InlineData("quantize", "q8_1", "--quantize 'q8_1': is not a quantization")]
    [InlineData("quantize", "f16", "--quantize 'f16': is not a quantization")]
    [InlineData("model", "/no/such/model", "--model '/no/such/model': is not a folder or a file")]
    [InlineData("t5", "/no/such/t5.safetensors", "--t5 '/no/such/t5.safetensors': is not a file")]
    public void A_bad_option_text_is_one_line_naming_the_option_and_the_value(string option, string value, string expected)
    {
        var act = () => PipelineSettingOptions.Read(name => name == option ? value : null, Settings);
        act.Should().Throw<SettingException>().Which.Message.Should().StartWith(expected).And.NotContain("\n");
        PipelineSettingOptions.All.Single(o => o.Name == option).Problem(value).Should().StartWith(expected);
    }
}
