using System.Text.Json.Nodes;

namespace Sd35.Synthetic;

/// <summary>
/// What a synthetic model folder holds: each component's config (the release's keys; sizes per preset) and the
/// shard size limits the release was saved with (diffusers' 10 GB for the transformer, transformers' 5 GB for T5).
/// </summary>
public sealed record SyntheticModelPreset(
    string Name, JsonObject Transformer, JsonObject ClipL, JsonObject ClipG, JsonObject T5, JsonObject Vae,
    long TransformerShardBytes, long TextEncoderShardBytes)
{
    public static IReadOnlyList<string> Names => ["sd35-large", "sd35-large-slice", "load-check", "tiny"];

    public static SyntheticModelPreset Named(string name) => name switch
    {
        "sd35-large" => Sd35Large,
        "sd35-large-slice" => Sd35LargeSlice,
        "load-check" => LoadCheck,
        "tiny" => Tiny,
        _ => throw new ArgumentException($"unknown preset '{name}'; known: {string.Join(", ", Names)}"),
    };

    /// <summary>SD3.5 Large at its real sizes: 8.1 B transformer, CLIP-L, CLIP-G, T5-XXL encoder, 16-channel VAE.</summary>
    public static SyntheticModelPreset Sd35Large => new("sd35-large",
        ReleaseConfigs.Transformer(), ReleaseConfigs.ClipL(), ReleaseConfigs.ClipG(), ReleaseConfigs.T5Xxl(), ReleaseConfigs.Vae(),
        TransformerShardBytes: 10_000_000_000, TextEncoderShardBytes: 5_000_000_000);

    /// <summary>
    /// SD3.5 Large's tensors at their real shapes, fewer of them: 8 of the transformer's 38 blocks and 6 of T5's 24 layers
    /// (≈ 3.7 + 2.9 GB): loading measured on the release's tensor sizes in a fraction of its memory and disk.
    /// </summary>
    public static SyntheticModelPreset Sd35LargeSlice => Sd35Large with
    {
        Name = "sd35-large-slice",
        Transformer = With(ReleaseConfigs.Transformer(), ("num_layers", 8)),
        T5 = With(ReleaseConfigs.T5Xxl(), ("num_layers", 6), ("num_decoder_layers", 6)),
    };

    /// <summary>
    /// The loading gate's model (Sd35.Perf.Tests): tensors of a few to tens of MB, as real checkpoints hold, ≈ 0.4 GB of
    /// transformer and 0.2 GB of T5 at width 1536, so one load takes a few tenths of a second on a 1 GB/s disk and the
    /// fixed costs of opening and building (≈ 10 ms) stay small beside the reading.
    /// </summary>
    public static SyntheticModelPreset LoadCheck => Tiny with
    {
        Name = "load-check",
        Transformer = With(ReleaseConfigs.Transformer(), ("num_layers", 2), ("num_attention_heads", 24), ("caption_projection_dim", 1536),
            ("pos_embed_max_size", 96), ("sample_size", 64)),
        T5 = With(ReleaseConfigs.T5Xxl(), ("d_model", 1536), ("d_ff", 4096), ("num_heads", 24), ("num_layers", 2), ("num_decoder_layers", 2)),
        TransformerShardBytes = 100_000_000, TextEncoderShardBytes = 100_000_000,
    };

    /// <summary>
    /// The same files and keys at toy sizes (a few MB), with shard limits small enough that the transformer and T5
    /// are sharded as in the release: a fast test of the whole layout.
    /// </summary>
    public static SyntheticModelPreset Tiny => new("tiny",
        With(ReleaseConfigs.Transformer(), ("num_layers", 2), ("num_attention_heads", 2), ("attention_head_dim", 32),
            ("caption_projection_dim", 64), ("joint_attention_dim", 64), ("pooled_projection_dim", 56),
            ("pos_embed_max_size", 24), ("sample_size", 16)),
        ReleaseConfigs.Clip(hidden: 24, intermediate: 64, layers: 2, heads: 4, act: "quick_gelu"),
        ReleaseConfigs.Clip(hidden: 32, intermediate: 96, layers: 2, heads: 4, act: "gelu"),
        With(ReleaseConfigs.T5Xxl(), ("d_model", 64), ("d_kv", 16), ("d_ff", 128), ("num_heads", 4), ("num_layers", 2), ("num_decoder_layers", 2)),
        With(ReleaseConfigs.Vae(), ("layers_per_block", 1), ("norm_num_groups", 8), ("sample_size", 64))
            .Also(v => v["block_out_channels"] = new JsonArray(16, 16, 32, 32)),
        TransformerShardBytes: 400_000, TextEncoderShardBytes: 1_000_000);

    static JsonObject With(JsonObject config, params (string Key, int Value)[] values)
    {
        foreach (var (key, value) in values) config[key] = value;
        return config;
    }
}

static class JsonObjectExtensions
{
    public static JsonObject Also(this JsonObject o, Action<JsonObject> change)
    {
        change(o);
        return o;
    }
}
