using System.Text.Json;
using Sd35.Tensors;
using Sd35.Tensors.Checkpoints;

namespace Sd35.Models.Clip;

/// <summary>
/// The fields of a transformers <c>CLIPTextConfig</c> (<c>model_type</c> "clip_text_model") that the text model
/// uses, under the names <c>config.json</c> gives them, so a config file and this record read side by side.
/// </summary>
public sealed record ClipTextConfig(
    int vocab_size,
    int hidden_size,
    int intermediate_size,
    int projection_dim,
    int num_hidden_layers,
    int num_attention_heads,
    int max_position_embeddings,
    string hidden_act,
    double layer_norm_eps,
    int eos_token_id)
{
    public const string ModelType = "clip_text_model";

    public int head_dim => hidden_size / num_attention_heads;

    /// <summary>SD3's <c>text_encoder</c>: OpenAI CLIP ViT-L/14's text tower (~124 M parameters).</summary>
    public static ClipTextConfig ClipL { get; } = new(49408, 768, 3072, 768, 12, 12, 77, "quick_gelu", 1e-5, 49407);

    /// <summary>SD3's <c>text_encoder_2</c>: OpenCLIP ViT-bigG/14's text tower (~695 M parameters).</summary>
    public static ClipTextConfig ClipG { get; } = new(49408, 1280, 5120, 1280, 32, 20, 77, "gelu", 1e-5, 49407);

    /// <summary>Reads a config.json; absent fields take transformers' <c>CLIPTextConfig</c> defaults.</summary>
    public static ClipTextConfig FromJson(JsonElement json)
    {
        var modelType = json.String("model_type");
        if (modelType is not null && modelType != ModelType)
            throw new InvalidDataException($"model_type is '{modelType}', expected '{ModelType}'");
        var config = new ClipTextConfig(
            json.Int("vocab_size", 49408),
            json.Int("hidden_size", 512),
            json.Int("intermediate_size", 2048),
            json.Int("projection_dim", 512),
            json.Int("num_hidden_layers", 12),
            json.Int("num_attention_heads", 8),
            json.Int("max_position_embeddings", 77),
            json.String("hidden_act", "quick_gelu")!,
            json.Double("layer_norm_eps", 1e-5),
            json.Int("eos_token_id", 49407));
        config.Validate();
        return config;
    }

    public static ClipTextConfig FromFolder(ModelFolder folder) => folder.ReadConfig(FromJson);

    public void Validate()
    {
        if (hidden_size % num_attention_heads != 0)
            throw new InvalidDataException($"hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}");
    }
}
