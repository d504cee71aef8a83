using System.Text.Json.Serialization;
using Sd35.Layers;
using Sd35.Tensors.Checkpoints;

namespace Sd35.Models.T5;

/// <summary>
/// The fields of a transformers <c>T5Config</c> (<c>model_type</c> "t5") that the encoder uses, under the names
/// <c>config.json</c> gives them; absent fields take transformers' defaults. Only the gated feed-forward of
/// T5 v1.1 (SD3's T5-XXL) is supported.
/// </summary>
public sealed record T5Config : IModelConfig
{
    public const string T5ModelType = "t5";

    [JsonPropertyName("model_type")] public string? ModelType { get; init; }
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 32128;
    [JsonPropertyName("d_model")] public int DModel { get; init; } = 512;
    [JsonPropertyName("d_kv")] public int DKv { get; init; } = 64;
    [JsonPropertyName("d_ff")] public int DFf { get; init; } = 2048;
    [JsonPropertyName("num_layers")] public int NumLayers { get; init; } = 6;
    [JsonPropertyName("num_heads")] public int NumHeads { get; init; } = 8;
    [JsonPropertyName("relative_attention_num_buckets")] public int RelativeAttentionNumBuckets { get; init; } = 32;
    [JsonPropertyName("relative_attention_max_distance")] public int RelativeAttentionMaxDistance { get; init; } = 128;
    [JsonPropertyName("layer_norm_epsilon")] public double LayerNormEpsilon { get; init; } = 1e-6;
    [JsonPropertyName("feed_forward_proj")] public string FeedForwardProj { get; init; } = "relu";

    /// <summary>
    /// <c>dense_act_fn</c> as the file stores it. transformers derives the activation from <c>feed_forward_proj</c>
    /// ("gated-gelu" means gelu_new, for backwards compatibility); a stored value overrides that.
    /// </summary>
    [JsonPropertyName("dense_act_fn")] public string? DenseActFnSetting { get; init; }

    public string DenseActFn => DenseActFnSetting ?? DefaultActivation(FeedForwardProj);

    /// <summary>The width of q/k/v: heads × d_kv, not necessarily d_model.</summary>
    public int InnerDim => NumHeads * DKv;

    public bool IsGatedAct => FeedForwardProj.StartsWith("gated-", StringComparison.Ordinal);

    /// <summary>SD3's <c>text_encoder_3</c>: the encoder of Google's T5 v1.1 XXL (~4.76 B parameters).</summary>
    public static T5Config T5Xxl { get; } = new()
    {
        DModel = 4096, DKv = 64, DFf = 10240, NumLayers = 24, NumHeads = 64, FeedForwardProj = "gated-gelu",
    };

    static string DefaultActivation(string feedForwardProj)
    {
        var activation = feedForwardProj.Split('-')[^1];
        return activation == "gelu" && feedForwardProj == "gated-gelu" ? "gelu_new" : activation;
    }

    public void Validate(string file = ModelConfig.InMemory)
    {
        var rules = new ConfigRules(file);
        rules.OneOf("model_type", ModelType, null, T5ModelType);
        rules.Positive("vocab_size", VocabSize);
        rules.Positive("d_model", DModel);
        rules.Positive("d_kv", DKv);
        rules.Positive("d_ff", DFf);
        rules.AtLeast("num_layers", NumLayers, 1);
        rules.Positive("num_heads", NumHeads);
        rules.That((long)NumHeads * DKv <= int.MaxValue, "num_heads", $"{NumHeads} × d_kv {DKv} overflows");
        // Half the buckets go to each direction and half of those are exact offsets: at least one exact bucket each.
        rules.AtLeast("relative_attention_num_buckets", RelativeAttentionNumBuckets, 4);
        rules.That(RelativeAttentionMaxDistance > RelativeAttentionNumBuckets / 4, "relative_attention_max_distance",
            $"{RelativeAttentionMaxDistance} must exceed the exact range relative_attention_num_buckets / 4 = {RelativeAttentionNumBuckets / 4}");
        rules.PositiveFinite("layer_norm_epsilon", LayerNormEpsilon);
        rules.That(FeedForwardProj is not null && IsGatedAct, "feed_forward_proj",
            $"'{FeedForwardProj}': only the gated feed-forward of T5 v1.1 (wi_0, wi_1, wo) is implemented");
        rules.OneOf(DenseActFnSetting is null ? "feed_forward_proj" : "dense_act_fn", DenseActFn, Activations.Names);
    }
}
