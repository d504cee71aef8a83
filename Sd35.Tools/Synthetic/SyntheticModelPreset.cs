using System.Text.Json.Nodes;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;

namespace Sd35.Tools.Synthetic;

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
        Transformer = ReleaseConfigs.Transformer(SD3TransformerConfig.SD35Large with { NumLayers = 8 }),
        T5 = ReleaseConfigs.T5(T5Config.T5Xxl with { NumLayers = 6 }),
    };

    /// <summary>
    /// The loading gate's model (Sd35.Perf.Tests): tensors of a few to tens of MB, as real checkpoints hold, ≈ 0.4 GB of
    /// transformer and 0.2 GB of T5 at width 1536, so one load takes a few tenths of a second on a 1 GB/s disk and the
    /// fixed costs of opening and building (≈ 10 ms) stay small beside the reading.
    /// </summary>
    public static SyntheticModelPreset LoadCheck => Tiny with
    {
        Name = "load-check",
        Transformer = ReleaseConfigs.Transformer(SD3TransformerConfig.SD35Large with
        {
            NumLayers = 2, NumAttentionHeads = 24, CaptionProjectionDim = 1536, PosEmbedMaxSize = 96, SampleSize = 64,
        }),
        T5 = ReleaseConfigs.T5(T5Config.T5Xxl with { DModel = 1536, DFf = 4096, NumHeads = 24, NumLayers = 2 }),
        TransformerShardBytes = 100_000_000, TextEncoderShardBytes = 100_000_000,
    };

    /// <summary>
    /// The same files and keys at toy sizes (a few MB), with shard limits small enough that the transformer and T5
    /// are sharded as in the release: a fast test of the whole layout.
    /// </summary>
    public static SyntheticModelPreset Tiny => new("tiny",
        ReleaseConfigs.Transformer(SD3TransformerConfig.SD35Large with
        {
            NumLayers = 2, NumAttentionHeads = 2, AttentionHeadDim = 32, CaptionProjectionDim = 64, JointAttentionDim = 64,
            PooledProjectionDim = 56, PosEmbedMaxSize = 24, SampleSize = 16,
        }),
        ReleaseConfigs.Clip(ClipTextConfig.ClipL with { HiddenSize = 24, IntermediateSize = 64, ProjectionDim = 24, NumHiddenLayers = 2, NumAttentionHeads = 4 }),
        ReleaseConfigs.Clip(ClipTextConfig.ClipG with { HiddenSize = 32, IntermediateSize = 96, ProjectionDim = 32, NumHiddenLayers = 2, NumAttentionHeads = 4 }),
        ReleaseConfigs.T5(T5Config.T5Xxl with { DModel = 64, DKv = 16, DFf = 128, NumHeads = 4, NumLayers = 2 }),
        ReleaseConfigs.Vae(AutoencoderKLConfig.Sd35 with { LayersPerBlock = 1, NormNumGroups = 8, BlockOutChannels = [16, 16, 32, 32] }, sampleSize: 64),
        TransformerShardBytes: 400_000, TextEncoderShardBytes: 1_000_000);
}
