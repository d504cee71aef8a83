using System.Text.Json.Serialization;
using Sd35.Tensors.Checkpoints;

namespace Sd35.Models.Clip;

/// <summary>
/// The fields of a transformers <c>CLIPTextConfig</c> (<c>model_type</c> "clip_text_model") that the text model
/// uses, under the names <c>config.json</c> gives them; absent fields take transformers' defaults.
/// </summary>
public sealed record ClipTextConfig : IModelConfig
{
    public const string ClipTextModelType = "clip_text_model";

    [JsonPropertyName("model_type")] public string? ModelType { get; init; }
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 49408;
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 512;
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 2048;
    [JsonPropertyName("projection_dim")] public int ProjectionDim { get; init; } = 512;
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 12;
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 8;
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 77;
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "quick_gelu";
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; init; } = 1e-5;
    [JsonPropertyName("eos_token_id")] public int EosTokenId { get; init; } = 49407;

    /// <summary>SD3's <c>text_encoder</c>: OpenAI CLIP ViT-L/14's text tower (~124 M parameters).</summary>
    public static ClipTextConfig ClipL { get; } = new()
    {
        HiddenSize = 768, IntermediateSize = 3072, ProjectionDim = 768, NumHiddenLayers = 12, NumAttentionHeads = 12, HiddenAct = "quick_gelu",
    };

    /// <summary>SD3's <c>text_encoder_2</c>: OpenCLIP ViT-bigG/14's text tower (~695 M parameters).</summary>
    public static ClipTextConfig ClipG { get; } = new()
    {
        HiddenSize = 1280, IntermediateSize = 5120, ProjectionDim = 1280, NumHiddenLayers = 32, NumAttentionHeads = 20, HiddenAct = "gelu",
    };

    public void Validate(string file = ModelConfig.InMemory)
    {
        var rules = new ConfigRules(file);
        rules.OneOf("model_type", ModelType, null, ClipTextModelType);
        rules.Positive("vocab_size", VocabSize);
        rules.Positive("hidden_size", HiddenSize);
        rules.Positive("num_attention_heads", NumAttentionHeads);
        rules.That(HiddenSize % NumAttentionHeads == 0, "num_attention_heads",
            $"hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
        rules.Positive("intermediate_size", IntermediateSize);
        rules.Positive("projection_dim", ProjectionDim);
        rules.AtLeast("num_hidden_layers", NumHiddenLayers, 1);
        rules.Positive("max_position_embeddings", MaxPositionEmbeddings);
        rules.OneOf("hidden_act", HiddenAct, Layers.Activations.Names);
        rules.PositiveFinite("layer_norm_eps", LayerNormEps);
        rules.That(EosTokenId >= 0 && EosTokenId < VocabSize, "eos_token_id", $"{EosTokenId} is outside the vocabulary 0..{VocabSize - 1}");
    }
}
