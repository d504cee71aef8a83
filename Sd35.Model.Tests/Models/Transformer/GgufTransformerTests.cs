using FluentAssertions;
using Sd35.Layers;
using Sd35.Models.Transformer;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Checkpoints.Layouts;
using Sd35.Tensors.Quantization;
using Sd35.Tests.Tensors.Quantization;
using Sd35.Tests.TestSupport;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Sd35.Tests.Models.Transformer;

/// <summary>
/// A GGUF MMDiT as users hold it, data-driven over the transformer goldens (<see cref="StoredWeightCases"/>): each
/// golden written with the project's writer (<see cref="OriginalLayoutWriter.WriteGguf"/>) in every block type the codec
/// holds, and every <c>*.gguf</c> dropped into a golden folder, read through the component reader
/// (<see cref="PipelineComponents.FromFile"/>) with the golden's config, computes what the fp32 model computes on the
/// file's values as the test's own plain dequantizer (<see cref="ReferenceBlocks"/>, not the codec under test) reads them.
/// </summary>
public sealed class GgufTransformerTests(ITestOutputHelper output)
{
    /// <summary>The case's GGUF file: written into <paramref name="dir"/> from the golden, or the one dropped beside it.</summary>
    internal static string GgufOf(string folder, string variant, TempDirectory dir)
    {
        var golden = Golden.Resolve(folder);
        if (variant.EndsWith(".gguf", StringComparison.Ordinal)) return Path.Combine(golden, variant);
        var path = dir.File($"transformer-{variant}.gguf");
        using var checkpoint = new ModelFolder(golden).OpenCheckpoint();
        OriginalLayoutWriter.WriteGguf(path, checkpoint, Enum.Parse<GgmlType>(variant), GgmlCodec.Quantize);
        return path;
    }

    /// <summary>Loading a GGUF transformer (original names, fused qkv split) leaves no tensor alive but the disposed model's.</summary>
    [Theory]
    [MemberData(nameof(StoredWeightCases.GgufVariants), MemberType = typeof(StoredWeightCases))]
    public void A_gguf_transformer_leaves_no_tensor_alive_once_disposed(string folder, string variant)
    {
        using var dir = new TempDirectory();
        var gguf = GgufOf(folder, variant, dir);
        var golden = Golden.Resolve(folder);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = TorchSharp.DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        using (SD3Transformer2DModel.FromFolder(PipelineComponents.FromFile(gguf, ModelComponent.Transformer, golden))) { }
        long left = TorchSharp.DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount - before;
        left.Should().Be(0, $"{left} tensors made while loading {variant} GGUF of {folder} outlived the disposed model");
    }

    [Theory]
    [MemberData(nameof(StoredWeightCases.GgufVariants), MemberType = typeof(StoredWeightCases))]
    public void A_gguf_transformer_is_the_fp32_model_on_the_reference_dequantized_file(string folder, string variant)
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var gguf = GgufOf(folder, variant, dir);
        var golden = Golden.Resolve(folder);

        using var model = SD3Transformer2DModel.FromFolder(PipelineComponents.FromFile(gguf, ModelComponent.Transformer, golden));
        using var reference = SD3Transformer2DModel.FromFolder(new ModelFolder(golden));
        var blockKeys = LoadReferenceValues(reference, gguf);

        // A storable linear keeps the file's blocks; any other parameter stored as blocks is expanded at load.
        var storable = model.named_modules().Where(m => m.module is StoredWeightLinear).ToDictionary(m => m.name + ".weight", m => (StoredWeightLinear)m.module);
        var held = storable.Where(s => GgmlBlocks.IsBlockQuantized(s.Value.WeightStorage)).Select(s => s.Key).ToList();
        held.Should().BeEquivalentTo(blockKeys.Where(storable.ContainsKey), "every storable weight the file stores as blocks is held as blocks");
        held.Should().NotBeEmpty("the case must exercise blocks");
        int blocks = blockKeys.Count;

        var io = Golden.ReadAll(Path.Combine(golden, "io.safetensors"));
        Tensor Run(SD3Transformer2DModel m) =>
            m.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]).to(ScalarType.Float32);
        var report = AssertQuality.Fp32(Run(reference), Run(model), $"{folder} {variant} GGUF against fp32 on the reference-dequantized file");
        output.WriteLine($"{folder} {variant}: {blocks} block weights; {report}");
    }

    /// <summary>
    /// Every tensor of the file, under the model's names, into <paramref name="reference"/>: blocks through
    /// <see cref="ReferenceBlocks.Dequantize"/>, float tensors as stored. Returns the names of those stored as blocks.
    /// </summary>
    static List<string> LoadReferenceValues(SD3Transformer2DModel reference, string gguf)
    {
        using var file = SingleFileCheckpoint.Open(gguf, ModelComponent.Transformer);
        var state = reference.state_dict();
        file.Keys.Should().BeEquivalentTo(state.Keys, "the file holds exactly the model's tensors");
        var blocks = new List<string>();
        using var noGrad = no_grad();
        foreach (var (name, target) in state)
        {
            using var stored = file.Read(name);
            if (file.BlockTypeOf(name) is { } type)
            {
                var values = ReferenceBlocks.Dequantize(type, stored.contiguous().data<byte>().ToArray());
                using var dense = tensor(values).reshape(target.shape);
                target.copy_(dense);
                blocks.Add(name);
            }
            else target.copy_(stored.to(ScalarType.Float32).reshape(target.shape));
        }
        return blocks;
    }
}
