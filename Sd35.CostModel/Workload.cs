using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using static TorchSharp.torch;

namespace Sd35.CostModeling;

/// <summary>
/// What one image costs to make: the model's components (real sizes or small ones), the image size, whether
/// classifier-free guidance runs (two branches) and whether T5 runs (the reference switches it off on
/// t3k_cfg2_sp2_tp2, which shortens the prompt to 77 + 77 tokens), in which dtype.
/// </summary>
public sealed record Workload
{
    public required SD3TransformerConfig Transformer { get; init; }
    public required ClipTextConfig ClipL { get; init; }
    public required ClipTextConfig ClipG { get; init; }
    public T5Config? T5 { get; init; }
    public required AutoencoderKLConfig Vae { get; init; }
    public int Width { get; init; } = 1024;
    public int Height { get; init; } = 1024;
    public bool Guided { get; init; } = true;
    /// <summary>T5 tokens (diffusers' max_sequence_length); the prompt is 77 CLIP tokens plus these, or 77 + 77 without T5.</summary>
    public int T5Tokens { get; init; } = 256;
    public ScalarType DType { get; init; } = ScalarType.BFloat16;

    /// <summary>SD3.5 Large at 1024², CFG on, T5 on (333 prompt tokens), bf16: the reference's image.</summary>
    public static Workload Sd35Large { get; } = new()
    {
        Transformer = SD3TransformerConfig.SD35Large,
        ClipL = ClipTextConfig.ClipL,
        ClipG = ClipTextConfig.ClipG,
        T5 = T5Config.T5Xxl,
        Vae = AutoencoderKLConfig.Sd35,
    };

    public Workload WithoutT5() => this with { T5 = null };

    public int LatentScale => Vae.ScaleFactor;
    public long LatentHeight => Height / LatentScale;
    public long LatentWidth => Width / LatentScale;
    public long ImageTokens => LatentHeight / Transformer.PatchSize * (LatentWidth / Transformer.PatchSize);
    public long PromptTokens => 77 + (T5 is null ? 77 : T5Tokens);

    public string Describe() =>
        $"{Transformer.NumLayers} blocks × {Transformer.NumAttentionHeads} heads, {Width}×{Height} ({ImageTokens} image + {PromptTokens} prompt tokens), " +
        $"{(Guided ? "CFG" : "no guidance")}, T5 {(T5 is null ? "off" : "on")}, {DType}";
}
