using FluentAssertions;
using Sd35.Errors;
using Sd35.Hosting;
using Sd35.Mesh;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Checkpoints.Layouts;
using Sd35.Tensors.Quantization;
using Sd35.Tests.Mesh;
using Sd35.Tests.TestSupport;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Sd35.Tests.Parallel;

/// <summary>
/// The user's path of issue 24 through the front door: a diffusers folder whose transformer is replaced by a Q8_0
/// GGUF file (written with the project's writer from the tiny golden), T5 quantized to Q8_0 at load
/// (<see cref="PipelineSettings.Quantization"/>), built by <see cref="PipelineFactory.Create(PipelineSettings)"/>:
/// Preflight accepts the file's blocks, the models hold them, and a mesh gives what one device gives on every device.
/// </summary>
[Collection(MeshRunCollection.Name)]
public sealed class GgufPipelineTests(ITestOutputHelper output)
{
    static PipelineSettings Settings(TinyModelCopy model, string gguf, string config) => new()
    {
        Source = new ModelSource { Model = model.Root, Transformer = gguf },
        Quantization = GgmlType.Q8_0,
        ComputeDType = ScalarType.Float32,
        Parallel = ParallelConfig.Parse(config),
        Process = ProcessSetup.HostAsIs,
    };

    static string WriteGguf(TinyModelCopy model, GgmlType type)
    {
        var path = Path.Combine(model.Root, $"sd3.5_tiny-{type}.gguf");
        using var checkpoint = new ModelFolder(model.Transformer).OpenCheckpoint();
        OriginalLayoutWriter.WriteGguf(path, checkpoint, type, GgmlCodec.Quantize);
        return path;
    }

    [Fact]
    public void A_q8_0_gguf_transformer_with_t5_quantized_at_load_runs_on_a_mesh_as_on_one_device()
    {
        using var model = new TinyModelCopy();
        var gguf = WriteGguf(model, GgmlType.Q8_0);
        var request = TinyModelCopy.Request with { Steps = 2, Seed = 5 };

        using var single = PipelineFactory.Create(Settings(model, gguf, "n150_cfg1_sp1_tp1"));
        var summaries = ComponentSummary.Of(single.Components, single.Precision).ToDictionary(c => c.Component);
        (summaries["transformer"].Format, summaries["transformer"].Quantization, summaries["transformer"].Source).Should().Be(("GGUF", "q8_0 (in the file)", gguf));
        summaries["text_encoder_3"].Quantization.Should().Be("q8_0 (at load)");
        (summaries["vae"].Format, summaries["vae"].Quantization).Should().Be(("diffusers folder", "none"));
        summaries["transformer"].Stored.Keys.Should().Contain("Q8_0");
        foreach (var summary in summaries.Values) output.WriteLine(summary.ToString());

        var expected = DeviceRun.Generate(single, request);
        const string mesh = "t3k_cfg2_sp2_tp2";
        using var meshed = PipelineFactory.Create(Settings(model, gguf, mesh));
        var actual = DeviceRun.Generate(meshed, request);
        actual.CheckEveryDeviceAgainst(expected, ParallelConfig.Parse(mesh).DeviceCount, ParallelModelTests.MeshPipelineFp32Pcc,
            ParallelModelTests.MeshPipelineFp32AbsRel, $"{mesh} Q8_0 GGUF transformer, T5 Q8_0 at load");

        // Quantized against the full-precision folder: close, not equal (the blocks are really used).
        using var full = PipelineFactory.Create(Settings(model, gguf, "n150_cfg1_sp1_tp1") with { Source = new ModelSource { Model = model.Root }, Quantization = null });
        var fullTransformer = ComponentSummary.Of(full.Components, full.Precision).Single(c => c.Component == "transformer");
        output.WriteLine(fullTransformer.ToString());
        // Q8_0 is 34 bytes per 32 values against the folder's 128 (fp32); in the tiny model what stays float (biases,
        // norms, pos_embed, the patch embedding in F16) is a larger share than at full size: measured 643 328 of 1 922 046 bytes.
        summaries["transformer"].Bytes.Should().BeLessThan(fullTransformer.Bytes * 4 / 10);
        var fp32 = DeviceRun.Generate(full, request);
        var report = Sd35.Tools.Numerics.Quality.Compare(fp32.Image, expected.Image);
        output.WriteLine($"Q8_0 GGUF transformer + Q8_0 T5 against fp32, image after {request.Steps} steps: {report}");
        fp32.Image.Equals(expected.Image).Should().BeFalse("the quantized pipeline computes with the blocks");
        AssertQuality.Close(fp32.Image, expected.Image, 0.999, 0.05, "Q8_0 pipeline against fp32");
    }

    [Fact]
    public void Preflight_accepts_blocks_for_a_storable_linear_weight()
    {
        using var model = new TinyModelCopy();
        var gguf = WriteGguf(model, GgmlType.Q4_1);
        var components = PipelineComponents.From(new ModelSource { Model = model.Root, Transformer = gguf });
        Preflight.CheckModel(components).Should().BeGreaterThanOrEqualTo(0);
    }

    [Fact]
    public void Blocks_where_the_model_needs_an_exact_dtype_are_refused_by_the_checks_naming_file_and_tensor()
    {
        using var dir = new TempDirectory();
        var path = dir.File("indices.safetensors");
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["bias"] = zeros(8) });
        using var checkpoint = Checkpoint.Open(path);
        checkpoint.AddBlocks("indices", QuantizedWeight.Quantize(zeros(8, 32), GgmlType.Q8_0));
        using var module = new WithIndices();

        var act = () => CheckpointLoader.Verify(module, checkpoint);
        var message = act.Should().Throw<CheckpointException>().Which.Message;
        message.Should().Contain(path).And.Contain("'indices'").And.Contain("Q8_0 blocks").And.Contain("Int64").And.NotContain("\n");
    }

    /// <summary>A module with an integer parameter: the exact dtype no block expands to.</summary>
    sealed class WithIndices : nn.Module
    {
        public WithIndices() : base(nameof(WithIndices))
        {
            register_parameter("indices", new TorchSharp.Modules.Parameter(zeros([8, 32], ScalarType.Int64), requires_grad: false));
            register_parameter("bias", new TorchSharp.Modules.Parameter(zeros(8)));
        }
    }
}
