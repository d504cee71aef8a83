using FluentAssertions;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Checkpoints.Layouts;
using Sd35.Tensors.Quantization;
using Sd35.Tests.Models.Transformer;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Tensors.Formats;

/// <summary>
/// The same weights in every layout users hold give the same model, to the bit. Each transformer golden folder is
/// written by the project's own writer as the release's single file and as GGUF (F32, BF16); any <c>*.gguf</c> or
/// <c>*single*.safetensors</c> dropped beside a golden is a further case (loaded with the golden's config).
/// </summary>
public class LayoutEquivalenceTests
{
    const string Written = "written:";

    public static TheoryData<string, string> TransformerCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var folder in TransformerGoldenTests.GoldenFolders())
        {
            var relative = Path.GetRelativePath(RepoPaths.Fixtures(), folder);
            foreach (var format in new[] { "single-file", "gguf-f32", "gguf-bf16" }) data.Add(relative, Written + format);
            foreach (var file in Directory.EnumerateFiles(folder).Where(IsDroppedLayout).Order()) data.Add(relative, Path.GetFileName(file));
        }
        return data;
    }

    static bool IsDroppedLayout(string file) =>
        file.EndsWith(".gguf", StringComparison.Ordinal) || (Path.GetFileName(file).Contains("single") && file.EndsWith(".safetensors", StringComparison.Ordinal));

    [Theory]
    [MemberData(nameof(TransformerCases))]
    public void A_transformer_in_another_layout_gives_the_folders_output(string golden, string format)
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var folder = Golden.Resolve(golden);
        var file = format.StartsWith(Written) ? WriteTransformer(folder, format[Written.Length..], dir) : Path.Combine(folder, format);

        using var expectedModel = SD3Transformer2DModel.FromFolder(new ModelFolder(folder));
        if (format.EndsWith("bf16")) RoundToBf16(expectedModel);
        using var actualModel = SD3Transformer2DModel.FromFolder(PipelineComponents.FromFile(file, ModelComponent.Transformer, folder));

        var io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
        var expected = expectedModel.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]);
        var actual = actualModel.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]);
        expected.Equals(actual).Should().BeTrue($"{golden} as {format} must give the folder's output bit for bit (max |diff| {(expected - actual).abs().max().item<float>()})");
    }

    [Theory]
    [MemberData(nameof(TransformerCases))]
    public void The_inferred_transformer_config_is_the_folders(string golden, string format)
    {
        using var dir = new TempDirectory();
        var folder = Golden.Resolve(golden);
        var file = format.StartsWith(Written) ? WriteTransformer(folder, format[Written.Length..], dir) : Path.Combine(folder, format);
        var expected = new ModelFolder(folder).ReadConfig<SD3TransformerConfig>();

        var inferred = PipelineComponents.FromFile(file, ModelComponent.Transformer, configDirectory: null).ReadConfig<SD3TransformerConfig>();

        // sample_size is the default resolution, not in any tensor; diffusers' single-file loader takes the release's too.
        inferred.Should().BeEquivalentTo(expected, o => o.Excluding(c => c.SampleSize));
    }

    [Fact]
    public void The_vae_from_the_single_file_decodes_as_the_folder_and_its_inferred_config_matches()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var vaeFolder = Golden.Resolve(Path.Combine("reference", "vae", "vae_tiny"));
        var file = WriteSingleFile(Golden.Resolve(Path.Combine("reference", "transformer", "tiny")), vaeFolder, dir);

        using var expectedModel = AutoencoderKLDecoder.FromFolder(new ModelFolder(vaeFolder));
        using var actualModel = AutoencoderKLDecoder.FromFolder(PipelineComponents.FromFile(file, ModelComponent.Vae, vaeFolder));
        using var encoder = AutoencoderKLEncoder.FromFolder(PipelineComponents.FromFile(file, ModelComponent.Vae, vaeFolder));
        manual_seed(7);
        var latents = randn(1, 16, 4, 4);
        expectedModel.Decode(latents).Equals(actualModel.Decode(latents)).Should().BeTrue("the ldm-named VAE must decode as the diffusers folder, bit for bit");

        var inferred = PipelineComponents.FromFile(file, ModelComponent.Vae, null).ReadConfig<AutoencoderKLConfig>();
        // norm_num_groups shows in no tensor shape (diffusers' loader takes the release's 32); the tiny VAE uses 8.
        inferred.Should().BeEquivalentTo(new ModelFolder(vaeFolder).ReadConfig<AutoencoderKLConfig>(), o => o.Excluding(c => c.NormNumGroups));
    }

    [Fact]
    public void The_single_file_names_what_it_holds_and_a_folder_override_keeps_the_folder_config()
    {
        using var dir = new TempDirectory();
        var file = WriteSingleFile(Golden.Resolve(Path.Combine("reference", "transformer", "tiny")), Golden.Resolve(Path.Combine("reference", "vae", "vae_tiny")), dir);
        SingleFileCheckpoint.ComponentsIn(file).Should().Equal(ModelComponent.Transformer, ModelComponent.Vae);

        var overridden = PipelineComponents.FromFile(file, ModelComponent.Transformer, Golden.Resolve(Path.Combine("reference", "transformer", "tiny")));
        overridden.ConfigPath.Should().EndWith("config.json");
        overridden.WeightsFile.Should().Be(file);
    }

    /// <summary>
    /// SD3.5 Medium's MMDiT-X (a second image attention, <c>attn2</c>, in its first blocks) has no golden: a seeded random
    /// one in the tiny widths, written in the original names, must give the diffusers-named model's output bit for bit
    /// and infer its dual-attention layers.
    /// </summary>
    [Fact]
    public void An_mmdit_x_transformer_round_trips_through_the_original_names()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var folder = Golden.Resolve(Path.Combine("reference", "transformer", "tiny"));
        var config = new ModelFolder(folder).ReadConfig<SD3TransformerConfig>() with { DualAttentionLayers = [0, 1] };
        manual_seed(24);
        using var expectedModel = new SD3Transformer2DModel(config);
        using (no_grad()) foreach (var (_, p) in expectedModel.named_parameters()) p.copy_(randn_like(p) * 0.05);
        var diffusers = dir.File("diffusers.safetensors");
        SafetensorsWriter.Write(diffusers, expectedModel.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));
        var single = dir.File("mmdit_x_single.safetensors");
        using (var checkpoint = Checkpoint.Open(diffusers))
            OriginalLayoutWriter.WriteSingleFile(single, new Dictionary<ModelComponent, Checkpoint> { [ModelComponent.Transformer] = checkpoint });
        using (var stored = Checkpoint.Open(single)) stored.Keys.Should().Contain("model.diffusion_model.joint_blocks.1.x_block.attn2.qkv.weight");

        var inferred = PipelineComponents.FromFile(single, ModelComponent.Transformer, null);
        inferred.ReadConfig<SD3TransformerConfig>().DualAttentionLayers.Should().Equal(0, 1);
        using var actualModel = SD3Transformer2DModel.FromFolder(inferred);
        var io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
        var expected = expectedModel.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]);
        var actual = actualModel.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]);
        actual.Equals(expected).Should().BeTrue();
    }

    static string WriteTransformer(string folder, string format, TempDirectory dir)
    {
        using var checkpoint = new ModelFolder(folder).OpenCheckpoint();
        switch (format)
        {
            case "single-file":
                var path = dir.File("sd3_single.safetensors");
                OriginalLayoutWriter.WriteSingleFile(path, new Dictionary<ModelComponent, Checkpoint> { [ModelComponent.Transformer] = checkpoint });
                return path;
            default:
                var gguf = dir.File($"transformer-{format}.gguf");
                OriginalLayoutWriter.WriteGguf(gguf, checkpoint, format == "gguf-bf16" ? GgmlType.BF16 : GgmlType.F32);
                return gguf;
        }
    }

    static string WriteSingleFile(string transformerFolder, string vaeFolder, TempDirectory dir)
    {
        using var transformer = new ModelFolder(transformerFolder).OpenCheckpoint();
        using var vae = new ModelFolder(vaeFolder).OpenCheckpoint();
        var path = dir.File("sd3.5_tiny.safetensors");
        OriginalLayoutWriter.WriteSingleFile(path, new Dictionary<ModelComponent, Checkpoint> { [ModelComponent.Transformer] = transformer, [ModelComponent.Vae] = vae });
        return path;
    }

    /// <summary>The GGUF writer keeps 1-D tensors (biases, norms) and pos_embed in F32 and stores the other weights in BF16.</summary>
    static void RoundToBf16(nn.Module model)
    {
        using var noGrad = no_grad();
        foreach (var (name, p) in model.named_parameters())
            if (p.dim() >= 2 && name != "pos_embed.pos_embed") p.copy_(p.to(ScalarType.BFloat16).to(ScalarType.Float32));
    }
}
