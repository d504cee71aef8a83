using System.Text.Json;
using Sd35.Tensors;
using Sd35.Tensors.Checkpoints;

namespace Sd35.Models.T5;

/// <summary>
/// The fields of a transformers <c>T5Config</c> (<c>model_type</c> "t5") that the encoder uses, under the names
/// <c>config.json</c> gives them. Only the gated feed-forward of T5 v1.1 (SD3's T5-XXL) is supported.
/// </summary>
public sealed record T5Config(
    int vocab_size,
    int d_model,
    int d_kv,
    int d_ff,
    int num_layers,
    int num_heads,
    int relative_attention_num_buckets,
    int relative_attention_max_distance,
    double layer_norm_epsilon,
    string feed_forward_proj,
    string dense_act_fn)
{
    public const string ModelType = "t5";

    /// <summary>The width of q/k/v: heads × d_kv, not necessarily d_model.</summary>
    public int inner_dim => num_heads * d_kv;

    /// <summary>SD3's <c>text_encoder_3</c>: the encoder of Google's T5 v1.1 XXL (~4.76 B parameters).</summary>
    public static T5Config T5Xxl { get; } = new(32128, 4096, 64, 10240, 24, 64, 32, 128, 1e-6, "gated-gelu", "gelu_new");

    /// <summary>Reads a config.json; absent fields take transformers' <c>T5Config</c> defaults.</summary>
    public static T5Config FromJson(JsonElement json)
    {
        var modelType = json.String("model_type");
        if (modelType is not null && modelType != ModelType)
            throw new InvalidDataException($"model_type is '{modelType}', expected '{ModelType}'");
        var feedForward = json.String("feed_forward_proj", "relu")!;
        var config = new T5Config(
            json.Int("vocab_size", 32128),
            json.Int("d_model", 512),
            json.Int("d_kv", 64),
            json.Int("d_ff", 2048),
            json.Int("num_layers", 6),
            json.Int("num_heads", 8),
            json.Int("relative_attention_num_buckets", 32),
            json.Int("relative_attention_max_distance", 128),
            json.Double("layer_norm_epsilon", 1e-6),
            feedForward,
            // T5Config derives the activation from feed_forward_proj ("gated-gelu" means gelu_new, for
            // backwards compatibility); a dense_act_fn stored in the file overrides it, as in transformers.
            json.String("dense_act_fn") ?? DefaultActivation(feedForward));
        config.Validate();
        return config;
    }

    public static T5Config FromFolder(ModelFolder folder) => folder.ReadConfig(FromJson);

    static string DefaultActivation(string feedForwardProj)
    {
        var activation = feedForwardProj.Split('-')[^1];
        return activation == "gelu" && feedForwardProj == "gated-gelu" ? "gelu_new" : activation;
    }

    public bool is_gated_act => feed_forward_proj.StartsWith("gated-", StringComparison.Ordinal);

    public void Validate()
    {
        if (!is_gated_act)
            throw new NotSupportedException(
                $"feed_forward_proj '{feed_forward_proj}': only the gated feed-forward of T5 v1.1 (wi_0, wi_1, wo) is implemented");
    }
}
