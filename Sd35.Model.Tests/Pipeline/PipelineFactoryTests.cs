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
    /// <summary>A test host is left as it is: no CPU runtime switches, NNPACK untouched.</summary>
    static readonly PipelineSettings Settings = new() { Process = ProcessSetup.HostAsIs };

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
    public void Quantization_is_refused_for_now_with_one_line_naming_the_option()
    {
        var act = () => PipelineFactory.Create(Settings with { Quantization = GgmlType.Q8_0 });
        act.Should().Throw<SettingException>().Which.Message.Should().Be("--quantization 'q8_0': quantized weights are not supported yet");
    }

    [Fact]
    public void A_compute_dtype_other_than_the_weights_is_refused_for_now_and_the_same_one_is_accepted()
    {
        var act = () => PipelineFactory.Create(Settings with { ComputeDType = ScalarType.BFloat16 });
        act.Should().Throw<SettingException>().Which.Message.Should().StartWith("--compute-dtype 'bfloat16': computing in another dtype than the weights (float32)");
        using var same = PipelineFactory.Create(Settings with { WeightDType = ScalarType.BFloat16, ComputeDType = ScalarType.BFloat16 });
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
            ["model"] = dir.Path, ["parallel"] = "t3k_cfg2_sp2_tp2", ["device"] = "CPU", ["bf16"] = "true", ["models"] = "resident", ["quantization"] = "Q4_0",
        };
        var settings = PipelineSettingOptions.Read(name => texts.GetValueOrDefault(name), Settings);

        settings.Source.Should().Be(new ModelSource { Model = dir.Path });
        settings.Parallel.Should().Be(ParallelConfig.Parse("t3k_cfg2_sp2_tp2"));
        (settings.Device, settings.WeightDType, settings.Residency, settings.Quantization).Should().Be((ComputeDevice.Cpu, ScalarType.BFloat16, ModelResidency.Resident, GgmlType.Q4_0));
        settings.Process.Should().Be(ProcessSetup.HostAsIs, "what is not given keeps the front-end's default");
    }

    [Theory]
    [InlineData("parallel", "t3k_cfg9", "--parallel 't3k_cfg9': ")]
    [InlineData("device", "tpu", "--device 'tpu': must be cpu or cuda")]
    [InlineData("models", "cached", "--models 'cached': must be resident or staged")]
    [InlineData("compute-dtype", "float8", "--compute-dtype 'float8': must be float32 or bfloat16")]
    [InlineData("quantization", "7", "--quantization '7': is not a ggml type")]
    [InlineData("model", "/no/such/model", "--model '/no/such/model': is not a folder or a file")]
    [InlineData("t5", "/no/such/t5.safetensors", "--t5 '/no/such/t5.safetensors': is not a file")]
    public void A_bad_option_text_is_one_line_naming_the_option_and_the_value(string option, string value, string expected)
    {
        var act = () => PipelineSettingOptions.Read(name => name == option ? value : null, Settings);
        act.Should().Throw<SettingException>().Which.Message.Should().StartWith(expected).And.NotContain("\n");
        PipelineSettingOptions.All.Single(o => o.Name == option).Problem(value).Should().StartWith(expected);
    }
}
