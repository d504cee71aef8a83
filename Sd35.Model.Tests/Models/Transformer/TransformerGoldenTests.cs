using Sd35.Tensors.Checkpoints;
using System.Text.Json;
using FluentAssertions;
using Sd35.Layers.Embeddings;
using Sd35.Models.Transformer;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Models.Transformer;

/// <summary>
/// Every folder under fixtures/ holding an MMDiT golden (config.json with joint_attention_dim, weights,
/// io.safetensors) is a case; each extra <c>io_skip_layer_&lt;i&gt;[_&lt;j&gt;…].safetensors</c> in it is a case run
/// with those blocks skipped.
/// </summary>
public class TransformerGoldenTests
{
    public static IEnumerable<string> GoldenFolders() => Golden.Folders(
        d => File.ReadAllText(Path.Combine(d, "config.json")).Contains("\"joint_attention_dim\""),
        "config.json", "diffusion_pytorch_model.safetensors", "io.safetensors");

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var folder in GoldenFolders())
            foreach (var io in Directory.EnumerateFiles(folder, "io*.safetensors").Order())
                data.Add(Path.GetRelativePath(RepoPaths.Fixtures(), folder), Path.GetFileName(io));
        return data;
    }

    static int[] SkipLayersOf(string ioFile)
    {
        const string prefix = "io_skip_layer_";
        var stem = Path.GetFileNameWithoutExtension(ioFile);
        return stem.StartsWith(prefix) ? stem[prefix.Length..].Split('_').Select(int.Parse).ToArray() : [];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Output_matches_the_diffusers_reference(string folder, string ioFile)
    {
        using var scope = NewDisposeScope();
        var model = SD3Transformer2DModel.FromFolder(new ModelFolder(Golden.Resolve(folder)));
        var io = Golden.ReadAll(Path.Combine(Golden.Resolve(folder), "io.safetensors"));
        var expected = Golden.ReadAll(Path.Combine(Golden.Resolve(folder), ioFile))["sample"];
        var skip = SkipLayersOf(ioFile);

        var actual = model.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"], skip);

        actual.shape.Should().Equal(expected.shape);
        AssertQuality.Fp32(expected, actual, $"{folder}/{ioFile} (skip layers [{string.Join(",", skip)}])");
    }

    [Fact]
    public void There_is_at_least_one_golden_and_one_skip_layer_golden()
    {
        var cases = Cases().Select(row => (string)row[1]).ToList();
        cases.Should().Contain("io.safetensors").And.Contain(c => c.StartsWith("io_skip_layer_"));
    }

    [Fact]
    public void Skipping_a_layer_changes_the_output()
    {
        // Guards the skip-layer golden against a model that ignores skip_layers.
        var folder = Golden.Resolve(Path.Combine("reference", "transformer", "tiny"));
        var model = SD3Transformer2DModel.FromFolder(new ModelFolder(folder));
        var io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
        var full = model.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]);
        var skipped = model.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"], [1]);
        (full - skipped).abs().max().item<float>().Should().BeGreaterThan(1e-3f);
    }

    [Fact]
    public void Computed_position_table_equals_the_checkpoint_buffer()
    {
        var folder = Golden.Resolve(Path.Combine("reference", "transformer", "tiny"));
        var config = ModelConfig.Read<SD3TransformerConfig>(Path.Combine(folder, "config.json"));
        using var file = Sd35.Tensors.Checkpoints.SafetensorsFile.Open(Path.Combine(folder, "diffusion_pytorch_model.safetensors"));
        var stored = file.Read("pos_embed.pos_embed");
        var computed = SinCosPositionEmbedding.Table(config.InnerDim, config.PosEmbedMaxSize, config.SampleSize / config.PatchSize);
        AssertQuality.Close(stored, computed, 0.9999999, 1e-6, "sin-cos table");
    }
}
