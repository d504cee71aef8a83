using System.Text.Json.Serialization;
using Sd35.Tensors.Checkpoints;

namespace Sd35.Models.Transformer;

/// <summary>
/// The configuration of diffusers' <c>SD3Transformer2DModel</c>, under the names its <c>config.json</c> uses.
/// Presets carry the real sizes of the released models.
/// </summary>
public sealed record SD3TransformerConfig : IModelConfig
{
    [JsonPropertyName("sample_size")] public int SampleSize { get; init; } = 128;
    [JsonPropertyName("patch_size")] public int PatchSize { get; init; } = 2;
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 16;
    [JsonPropertyName("num_layers")] public int NumLayers { get; init; } = 18;
    [JsonPropertyName("attention_head_dim")] public int AttentionHeadDim { get; init; } = 64;
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 18;
    [JsonPropertyName("joint_attention_dim")] public int JointAttentionDim { get; init; } = 4096;
    [JsonPropertyName("caption_projection_dim")] public int CaptionProjectionDim { get; init; } = 1152;
    [JsonPropertyName("pooled_projection_dim")] public int PooledProjectionDim { get; init; } = 2048;
    [JsonPropertyName("out_channels")] public int OutChannels { get; init; } = 16;
    [JsonPropertyName("pos_embed_max_size")] public int PosEmbedMaxSize { get; init; } = 96;
    [JsonPropertyName("dual_attention_layers")] public int[] DualAttentionLayers { get; init; } = [];
    [JsonPropertyName("qk_norm")] public string? QkNorm { get; init; }

    /// <summary>The model width, heads × head dim (2432 for SD3.5 Large).</summary>
    public int InnerDim => NumAttentionHeads * AttentionHeadDim;
    public bool UsesQkNorm => QkNorm == "rms_norm";

    public void Validate(string file = ModelConfig.InMemory)
    {
        var rules = new ConfigRules(file);
        rules.Positive("sample_size", SampleSize);
        rules.Positive("patch_size", PatchSize);
        rules.Positive("pos_embed_max_size", PosEmbedMaxSize);
        rules.That(SampleSize / PatchSize <= PosEmbedMaxSize, "pos_embed_max_size",
            $"{PosEmbedMaxSize} is smaller than the default grid sample_size / patch_size = {SampleSize / PatchSize}");
        rules.Positive("in_channels", InChannels);
        rules.Positive("out_channels", OutChannels);
        rules.AtLeast("num_layers", NumLayers, 1);
        rules.Positive("num_attention_heads", NumAttentionHeads);
        rules.Positive("attention_head_dim", AttentionHeadDim);
        long inner = (long)NumAttentionHeads * AttentionHeadDim;
        rules.That(inner <= int.MaxValue, "num_attention_heads", $"{NumAttentionHeads} × attention_head_dim {AttentionHeadDim} overflows");
        rules.That(inner % 4 == 0, "attention_head_dim", $"the width num_attention_heads × attention_head_dim = {inner} must be divisible by 4 (sin-cos table)");
        rules.That(CaptionProjectionDim == inner, "caption_projection_dim",
            $"{CaptionProjectionDim} must equal num_attention_heads × attention_head_dim = {inner}");
        rules.Positive("joint_attention_dim", JointAttentionDim);
        rules.Positive("pooled_projection_dim", PooledProjectionDim);
        rules.OneOf("qk_norm", QkNorm, null, "rms_norm");
        rules.That(DualAttentionLayers is not null, "dual_attention_layers", "must be a list, got null");
        for (int i = 0; i < DualAttentionLayers!.Length; i++)
            rules.That(DualAttentionLayers[i] >= 0 && DualAttentionLayers[i] < NumLayers, $"dual_attention_layers[{i}]",
                $"layer {DualAttentionLayers[i]} is outside 0..{NumLayers - 1}");
    }

    /// <summary>SD3.5 Large: 38 blocks × 38 heads × 64 (hidden 2432), qk RMSNorm, pos-embed 192.</summary>
    public static SD3TransformerConfig SD35Large { get; } = new()
    {
        NumLayers = 38, NumAttentionHeads = 38, CaptionProjectionDim = 2432, PosEmbedMaxSize = 192, QkNorm = "rms_norm",
    };

    /// <summary>SD3.5 Medium: 24 blocks × 24 heads (hidden 1536), MMDiT-X dual attention in blocks 0–12, pos-embed 384.</summary>
    public static SD3TransformerConfig SD35Medium { get; } = new()
    {
        NumLayers = 24, NumAttentionHeads = 24, CaptionProjectionDim = 1536, PosEmbedMaxSize = 384, QkNorm = "rms_norm",
        DualAttentionLayers = Enumerable.Range(0, 13).ToArray(),
    };

    /// <summary>SD3 Medium: 24 blocks × 24 heads (hidden 1536), no qk norm, pos-embed 192.</summary>
    public static SD3TransformerConfig SD3Medium { get; } = new()
    {
        NumLayers = 24, NumAttentionHeads = 24, CaptionProjectionDim = 1536, PosEmbedMaxSize = 192,
    };

    /// <summary>The closed-form parameter count (weights and biases; the fixed position table excluded).</summary>
    public long ParameterCount()
    {
        long d = InnerDim, hd = AttentionHeadDim, p = PatchSize;
        long Linear(long i, long o) => i * o + o;
        long Attention(bool context, bool preOnly) =>
            3 * Linear(d, d) + Linear(d, d) + (UsesQkNorm ? 2 * hd : 0)
            + (context ? 3 * Linear(d, d) + (UsesQkNorm ? 2 * hd : 0) + (preOnly ? 0 : Linear(d, d)) : 0);
        long ff = Linear(d, 4 * d) + Linear(4 * d, d);
        long total = InChannels * p * p * d + d                      // pos_embed.proj
            + Linear(256, d) + Linear(d, d) + Linear(PooledProjectionDim, d) + Linear(d, d) // time_text_embed
            + Linear(JointAttentionDim, d)                           // context_embedder
            + Linear(d, 2 * d) + Linear(d, p * p * OutChannels);     // norm_out, proj_out
        for (int i = 0; i < NumLayers; i++)
        {
            bool last = i == NumLayers - 1, dual = DualAttentionLayers.Contains(i);
            total += Linear(d, (dual ? 9 : 6) * d) + Linear(d, (last ? 2 : 6) * d) + Attention(true, last) + ff;
            if (dual) total += Attention(false, false);
            if (!last) total += ff;
        }
        return total;
    }
}
