using System.Text.Json.Serialization;
using Sd35.Tensors.Checkpoints;

namespace Sd35.Models.Vae;

/// <summary>
/// The fields of diffusers' <c>AutoencoderKL</c> config (<c>vae/config.json</c>), under the
/// diffusers names and with diffusers' defaults where a field is absent. Only the architecture SD3 / SD3.5 use is
/// built; anything else is refused by name so a different VAE fails loudly, not numerically.
/// </summary>
public sealed record AutoencoderKLConfig : IModelConfig
{
    const string UpDecoderBlock = "UpDecoderBlock2D";
    const string DownEncoderBlock = "DownEncoderBlock2D";

    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 3;
    [JsonPropertyName("out_channels")] public int OutChannels { get; init; } = 3;
    [JsonPropertyName("latent_channels")] public int LatentChannels { get; init; } = 4;
    [JsonPropertyName("block_out_channels")] public int[] BlockOutChannels { get; init; } = [64];
    [JsonPropertyName("layers_per_block")] public int LayersPerBlock { get; init; } = 1;
    [JsonPropertyName("norm_num_groups")] public int NormNumGroups { get; init; } = 32;
    [JsonPropertyName("scaling_factor")] public double ScalingFactor { get; init; } = 0.18215;
    /// <summary>diffusers' <c>shift_factor</c>; null there means no shift, i.e. 0.</summary>
    [JsonPropertyName("shift_factor")] public double? ShiftFactor { get; init; }
    [JsonPropertyName("use_quant_conv")] public bool UseQuantConv { get; init; } = true;
    [JsonPropertyName("use_post_quant_conv")] public bool UsePostQuantConv { get; init; } = true;
    [JsonPropertyName("mid_block_add_attention")] public bool MidBlockAddAttention { get; init; } = true;
    [JsonPropertyName("act_fn")] public string ActFn { get; init; } = "silu";
    /// <summary>null (absent) means one <c>UpDecoderBlock2D</c> per entry of <see cref="BlockOutChannels"/>, diffusers' default.</summary>
    [JsonPropertyName("up_block_types")] public string[]? UpBlockTypes { get; init; }
    /// <summary>null (absent) means one <c>DownEncoderBlock2D</c> per entry of <see cref="BlockOutChannels"/>, diffusers' default.</summary>
    [JsonPropertyName("down_block_types")] public string[]? DownBlockTypes { get; init; }

    /// <summary>The VAE's spatial factor, 2^(number of blocks − 1): 8 for SD3.5 (diffusers' <c>vae_scale_factor</c>).</summary>
    public int ScaleFactor => 1 << (BlockOutChannels.Length - 1);

    /// <summary>SD3.5 Large's VAE (<c>stabilityai/stable-diffusion-3.5-large</c>, <c>vae/config.json</c>).</summary>
    public static AutoencoderKLConfig Sd35 { get; } = new()
    {
        LatentChannels = 16,
        BlockOutChannels = [128, 256, 512, 512],
        LayersPerBlock = 2,
        NormNumGroups = 32,
        ScalingFactor = 1.5305,
        ShiftFactor = 0.0609,
        UseQuantConv = false,
        UsePostQuantConv = false,
    };

    /// <summary>GroupNorm epsilon: diffusers' VAE encoder and decoder hard-code 1e-6 (not a config field).</summary>
    public const double NormEps = 1e-6;

    public void Validate(string file = ModelConfig.InMemory)
    {
        var rules = new ConfigRules(file);
        rules.OneOf("act_fn", ActFn, "silu");
        rules.PositiveList("block_out_channels", BlockOutChannels);
        // Every block but the last doubles the size; beyond 2^7 no SD VAE exists and the factor soon overflows.
        rules.That(BlockOutChannels.Length <= 8, "block_out_channels", $"{BlockOutChannels.Length} blocks; at most 8 are supported");
        if (UpBlockTypes is not null)
        {
            rules.That(UpBlockTypes.Length == BlockOutChannels.Length, "up_block_types",
                $"lists {UpBlockTypes.Length} blocks for {BlockOutChannels.Length} block_out_channels");
            for (int i = 0; i < UpBlockTypes.Length; i++) rules.OneOf($"up_block_types[{i}]", UpBlockTypes[i], UpDecoderBlock);
        }
        if (DownBlockTypes is not null)
        {
            rules.That(DownBlockTypes.Length == BlockOutChannels.Length, "down_block_types",
                $"lists {DownBlockTypes.Length} blocks for {BlockOutChannels.Length} block_out_channels");
            for (int i = 0; i < DownBlockTypes.Length; i++) rules.OneOf($"down_block_types[{i}]", DownBlockTypes[i], DownEncoderBlock);
        }
        rules.Positive("in_channels", InChannels);
        rules.Positive("latent_channels", LatentChannels);
        rules.Positive("out_channels", OutChannels);
        rules.AtLeast("layers_per_block", LayersPerBlock, 0);
        rules.Positive("norm_num_groups", NormNumGroups);
        for (int i = 0; i < BlockOutChannels.Length; i++)
            rules.That(BlockOutChannels[i] % NormNumGroups == 0, $"block_out_channels[{i}]",
                $"{BlockOutChannels[i]} is not a multiple of norm_num_groups {NormNumGroups}");
        rules.That(ScalingFactor != 0 && double.IsFinite(ScalingFactor), "scaling_factor", $"{ScalingFactor} cannot unscale latents");
        rules.That(ShiftFactor is null || double.IsFinite(ShiftFactor.Value), "shift_factor", $"must be finite, got {ShiftFactor}");
    }
}
