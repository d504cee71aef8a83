using System.Text.Json;
using Sd35.Tensors;

namespace Sd35.Models.Vae;

/// <summary>
/// The decoder-relevant fields of diffusers' <c>AutoencoderKL</c> config (<c>vae/config.json</c>), under the
/// diffusers names (in PascalCase) and with diffusers' defaults where a field is absent. Only the architecture
/// SD3 / SD3.5 use is built; anything else is refused by name so a different VAE fails loudly, not numerically.
/// </summary>
public sealed record AutoencoderKLConfig
{
    public int InChannels { get; init; } = 3;
    public int OutChannels { get; init; } = 3;
    public int LatentChannels { get; init; } = 4;
    public IReadOnlyList<int> BlockOutChannels { get; init; } = [64];
    public int LayersPerBlock { get; init; } = 1;
    public int NormNumGroups { get; init; } = 32;
    public double ScalingFactor { get; init; } = 0.18215;
    /// <summary>diffusers' <c>shift_factor</c>; null there means no shift, i.e. 0.</summary>
    public double ShiftFactor { get; init; }
    public bool UseQuantConv { get; init; } = true;
    public bool UsePostQuantConv { get; init; } = true;
    public bool MidBlockAddAttention { get; init; } = true;

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

    /// <summary>GroupNorm epsilon: diffusers' VAE decoder hard-codes 1e-6 (not a config field).</summary>
    public const double NormEps = 1e-6;

    public static AutoencoderKLConfig FromJson(JsonElement config)
    {
        var act = config.String("act_fn", "silu");
        if (act != "silu") throw new NotSupportedException($"VAE act_fn '{act}' is not supported; SD3.5 uses 'silu'.");
        var blocks = config.IntArray("block_out_channels", [64]);
        var upTypes = config.StringArray("up_block_types", Enumerable.Repeat("UpDecoderBlock2D", blocks.Length).ToArray());
        var other = upTypes.FirstOrDefault(t => t != "UpDecoderBlock2D");
        if (other is not null) throw new NotSupportedException($"VAE up block type '{other}' is not supported; SD3.5 uses 'UpDecoderBlock2D'.");
        if (upTypes.Length != blocks.Length)
            throw new InvalidDataException($"VAE config lists {upTypes.Length} up_block_types for {blocks.Length} block_out_channels.");
        var result = new AutoencoderKLConfig
        {
            InChannels = config.Int("in_channels", 3),
            OutChannels = config.Int("out_channels", 3),
            LatentChannels = config.Int("latent_channels", 4),
            BlockOutChannels = blocks,
            LayersPerBlock = config.Int("layers_per_block", 1),
            NormNumGroups = config.Int("norm_num_groups", 32),
            ScalingFactor = config.Double("scaling_factor", 0.18215),
            ShiftFactor = config.Double("shift_factor", 0.0),
            UseQuantConv = config.Bool("use_quant_conv", true),
            UsePostQuantConv = config.Bool("use_post_quant_conv", true),
            MidBlockAddAttention = config.Bool("mid_block_add_attention", true),
        };
        result.Validate();
        return result;
    }

    public void Validate()
    {
        if (BlockOutChannels.Count == 0) throw new ArgumentException("block_out_channels is empty.");
        if (LatentChannels <= 0 || OutChannels <= 0 || LayersPerBlock < 0)
            throw new ArgumentException($"latent_channels {LatentChannels}, out_channels {OutChannels} and layers_per_block {LayersPerBlock} must be positive.");
        if (NormNumGroups <= 0 || BlockOutChannels.Any(c => c <= 0 || c % NormNumGroups != 0))
            throw new ArgumentException($"block_out_channels [{string.Join(", ", BlockOutChannels)}] must be positive multiples of norm_num_groups {NormNumGroups}.");
        if (ScalingFactor == 0 || !double.IsFinite(ScalingFactor)) throw new ArgumentException($"scaling_factor {ScalingFactor} cannot unscale latents.");
    }
}
