using Sd35.Errors;
using Sd35.Tensors.Checkpoints;
using FluentAssertions;
using Sd35.Models.Transformer;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Models.Transformer;

public class TransformerConfigTests
{
    static long CountParameters(SD3Transformer2DModel model) => model.parameters().Sum(p => p.numel());

    [Fact]
    public void Closed_form_count_equals_the_built_tiny_models()
    {
        var tiny = ModelConfig.Read<SD3TransformerConfig>(RepoPaths.Fixtures("reference", "transformer", "tiny", "config.json"));
        foreach (var config in new[] { tiny, tiny with { DualAttentionLayers = [0, 1] }, tiny with { QkNorm = null } })
            CountParameters(new SD3Transformer2DModel(config)).Should().Be(config.ParameterCount(), $"{config}");
    }

    [Fact]
    public void Closed_form_count_equals_the_checkpoint_of_the_tiny_golden()
    {
        var folder = RepoPaths.Fixtures("reference", "transformer", "tiny");
        var config = ModelConfig.Read<SD3TransformerConfig>(Path.Combine(folder, "config.json"));
        using var checkpoint = Sd35.Tensors.Checkpoints.Checkpoint.Open(Path.Combine(folder, "diffusion_pytorch_model.safetensors"));
        long stored = checkpoint.Keys.Where(k => k != "pos_embed.pos_embed").Sum(k => checkpoint.Entry(k).ElementCount);
        config.ParameterCount().Should().Be(stored);
    }

    [Fact]
    public void Presets_have_the_released_sizes()
    {
        SD3TransformerConfig.SD35Large.InnerDim.Should().Be(2432);
        SD3TransformerConfig.SD35Large.ParameterCount().Should().BeInRange(8_050_000_000, 8_150_000_000);
        // The released Medium file holds about 2.47 B values, of which 384² × 1536 ≈ 0.23 B are the fixed position table.
        SD3TransformerConfig.SD35Medium.ParameterCount().Should().BeInRange(2_200_000_000, 2_300_000_000);
        SD3TransformerConfig.SD3Medium.ParameterCount().Should().BeInRange(2_000_000_000, 2_100_000_000);
    }

    [Fact]
    public void Large_preset_builds_with_the_closed_form_count_on_the_meta_device()
    {
        var model = new SD3Transformer2DModel(SD3TransformerConfig.SD35Large, Sd35.Mesh.MeshRank.Single(new Device("meta")));
        CountParameters(model).Should().Be(SD3TransformerConfig.SD35Large.ParameterCount());
    }

    [Fact]
    public void Invalid_config_values_are_rejected_by_name()
    {
        var act = () => ModelConfig.Parse<SD3TransformerConfig>("{\"num_attention_heads\":4,\"attention_head_dim\":16,\"caption_projection_dim\":60}");
        act.Should().Throw<ConfigException>().WithMessage("*$.caption_projection_dim*60*");
        var qk = () => ModelConfig.Parse<SD3TransformerConfig>("{\"num_attention_heads\":4,\"attention_head_dim\":16,\"caption_projection_dim\":64,\"qk_norm\":\"layer_norm\"}");
        qk.Should().Throw<ConfigException>().WithMessage("*$.qk_norm*layer_norm*");
    }
}
