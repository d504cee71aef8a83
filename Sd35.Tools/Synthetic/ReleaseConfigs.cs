using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Pipeline;

namespace Sd35.Tools.Synthetic;

/// <summary>
/// The configuration files of the public <c>stabilityai/stable-diffusion-3.5-large</c> diffusers release, with its
/// keys and values (transformer, scheduler and model_index as published; the text encoders' and the VAE's as
/// transformers / diffusers write them for those architectures). A synthetic model folder writes these, so it is
/// read by exactly the code path that reads the release. The sizes are not repeated here: each model's file is its
/// config record (the library's preset, <see cref="SD3TransformerConfig.SD35Large"/> and the others) written out,
/// plus the keys only the release's file has (class names, versions, dropout, token ids the library does not read).
/// </summary>
public static class ReleaseConfigs
{
    public static JsonObject ModelIndex() => Parse("""
        {
          "_class_name": "StableDiffusion3Pipeline",
          "_diffusers_version": "0.31.0.dev0",
          "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
          "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
          "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
          "text_encoder_3": ["transformers", "T5EncoderModel"],
          "tokenizer": ["transformers", "CLIPTokenizer"],
          "tokenizer_2": ["transformers", "CLIPTokenizer"],
          "tokenizer_3": ["transformers", "T5TokenizerFast"],
          "transformer": ["diffusers", "SD3Transformer2DModel"],
          "vae": ["diffusers", "AutoencoderKL"]
        }
        """);

    /// <summary>SD3.5's <c>scheduler/scheduler_config.json</c>.</summary>
    public static JsonObject Scheduler() => FileOf(FlowMatchEulerSchedulerConfig.Sd35,
        Parse("""{ "_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.31.0.dev0" }"""));

    /// <summary>SD3.5 Large's <c>transformer/config.json</c>.</summary>
    public static JsonObject Transformer() => Transformer(SD3TransformerConfig.SD35Large);

    /// <summary>A <c>transformer/config.json</c> for <paramref name="config"/>, keyed as the release's.</summary>
    public static JsonObject Transformer(SD3TransformerConfig config)
    {
        var file = FileOf(config, Parse("""{ "_class_name": "SD3Transformer2DModel", "_diffusers_version": "0.31.0.dev0" }"""));
        // SD3.5 Large's file has no dual_attention_layers (diffusers' default: none); SD3.5 Medium's lists its MMDiT-X blocks.
        if (config.DualAttentionLayers.Length == 0) file.Remove("dual_attention_layers");
        return file;
    }

    /// <summary>CLIP ViT-L/14's text tower with projection (<c>text_encoder/</c>).</summary>
    public static JsonObject ClipL() => Clip(ClipTextConfig.ClipL);

    /// <summary>OpenCLIP ViT-bigG/14's text tower with projection (<c>text_encoder_2/</c>).</summary>
    public static JsonObject ClipG() => Clip(ClipTextConfig.ClipG);

    /// <summary>
    /// A CLIP text tower's <c>config.json</c> as SD3's files have it. They keep the legacy ids bos 0, eos 2, pad 1
    /// where the library's presets name CLIP's real end token (49407): the pooled position is the same either way
    /// (<see cref="ClipTextTransformer.EosPositions"/>), and the folder reads as the release reads.
    /// </summary>
    public static JsonObject Clip(ClipTextConfig config) => FileOf(config, Parse($$"""
        {
          "architectures": ["CLIPTextModelWithProjection"],
          "attention_dropout": 0.0,
          "bos_token_id": 0,
          "dropout": 0.0,
          "eos_token_id": 2,
          "initializer_factor": 1.0,
          "initializer_range": 0.02,
          "model_type": "{{ClipTextConfig.ClipTextModelType}}",
          "pad_token_id": 1,
          "torch_dtype": "float16",
          "transformers_version": "4.41.2"
        }
        """));

    /// <summary>T5 v1.1 XXL, of which SD3 uses the encoder (<c>text_encoder_3/</c>).</summary>
    public static JsonObject T5Xxl() => T5(T5Config.T5Xxl);

    /// <summary>
    /// A T5 <c>config.json</c> as transformers writes it: the activation it derives from <c>feed_forward_proj</c> spelled
    /// out, and a decoder as deep as the encoder (transformers' default; SD3 loads only the encoder).
    /// </summary>
    public static JsonObject T5(T5Config config)
    {
        var file = FileOf(config, Parse($$"""
            {
              "architectures": ["T5EncoderModel"],
              "classifier_dropout": 0.0,
              "decoder_start_token_id": 0,
              "dropout_rate": 0.1,
              "eos_token_id": 1,
              "initializer_factor": 1.0,
              "is_encoder_decoder": true,
              "model_type": "{{T5Config.T5ModelType}}",
              "output_past": true,
              "pad_token_id": 0,
              "tie_word_embeddings": false,
              "torch_dtype": "float16",
              "transformers_version": "4.41.2",
              "use_cache": true
            }
            """));
        file["dense_act_fn"] = config.DenseActFn;
        file["is_gated_act"] = config.IsGatedAct;
        file["num_decoder_layers"] = config.NumLayers;
        return Sorted(file);
    }

    /// <summary>SD3.5's <c>vae/config.json</c>.</summary>
    public static JsonObject Vae() => Vae(AutoencoderKLConfig.Sd35, sampleSize: 1024);

    /// <summary>
    /// A <c>vae/config.json</c> for <paramref name="config"/>, with its block types spelled out as diffusers writes them
    /// and the nominal image size <paramref name="sampleSize"/> (not read by the library).
    /// </summary>
    public static JsonObject Vae(AutoencoderKLConfig config, int sampleSize)
    {
        var file = FileOf(config, Parse($$"""
            {
              "_class_name": "AutoencoderKL",
              "_diffusers_version": "0.31.0.dev0",
              "force_upcast": true,
              "latents_mean": null,
              "latents_std": null,
              "sample_size": {{sampleSize}}
            }
            """));
        file["down_block_types"] ??= BlockTypes("DownEncoderBlock2D", config.BlockOutChannels.Length);
        file["up_block_types"] ??= BlockTypes("UpDecoderBlock2D", config.BlockOutChannels.Length);
        return Sorted(file);
    }

    /// <summary>The CLIP tokenizers' <c>special_tokens_map.json</c>: CLIP-L pads with its end token, CLIP-G with '!'.</summary>
    public static JsonObject ClipSpecialTokensMap(string padToken) => Parse($$"""
        {
          "bos_token": { "content": "<|startoftext|>", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false },
          "eos_token": { "content": "<|endoftext|>", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false },
          "pad_token": "{{padToken}}",
          "unk_token": { "content": "<|endoftext|>", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false }
        }
        """);

    public static JsonObject ClipTokenizerConfig(string padToken, int? padId) => Parse($$"""
        {
          "add_prefix_space": false,
          "added_tokens_decoder": {
            {{(padId is { } id ? $"\"{id}\": {{ \"content\": \"{padToken}\", \"lstrip\": false, \"normalized\": false, \"rstrip\": false, \"single_word\": false, \"special\": true }}," : "")}}
            "49406": { "content": "<|startoftext|>", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false, "special": true },
            "49407": { "content": "<|endoftext|>", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false, "special": true }
          },
          "bos_token": "<|startoftext|>",
          "clean_up_tokenization_spaces": true,
          "do_lower_case": true,
          "eos_token": "<|endoftext|>",
          "errors": "replace",
          "model_max_length": 77,
          "pad_token": "{{padToken}}",
          "tokenizer_class": "CLIPTokenizer",
          "unk_token": "<|endoftext|>"
        }
        """);

    public static JsonObject T5SpecialTokensMap() => Parse("""
        {
          "eos_token": { "content": "</s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false },
          "pad_token": { "content": "<pad>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false },
          "unk_token": { "content": "<unk>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false }
        }
        """);

    public static JsonObject T5TokenizerConfig() => Parse("""
        {
          "clean_up_tokenization_spaces": true,
          "eos_token": "</s>",
          "extra_ids": 100,
          "legacy": true,
          "model_max_length": 512,
          "pad_token": "<pad>",
          "sp_model_kwargs": {},
          "tokenizer_class": "T5Tokenizer",
          "unk_token": "<unk>"
        }
        """);

    /// <summary>
    /// Writes only a record's file keys (the properties named with <see cref="JsonPropertyNameAttribute"/>, not the
    /// values it derives) and leaves out what is null, which a config file leaves out too.
    /// </summary>
    static readonly JsonSerializerOptions FileKeysOnly = new()
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { KeepNamedProperties } },
    };

    static void KeepNamedProperties(JsonTypeInfo type)
    {
        if (type.Kind != JsonTypeInfoKind.Object) return;
        for (int i = type.Properties.Count - 1; i >= 0; i--)
            if (type.Properties[i].AttributeProvider?.IsDefined(typeof(JsonPropertyNameAttribute), inherit: false) != true)
                type.Properties.RemoveAt(i);
    }

    /// <summary>The record's keys with <paramref name="releaseOnly"/> over them, in the sorted order diffusers and transformers write.</summary>
    static JsonObject FileOf<TConfig>(TConfig config, JsonObject releaseOnly)
    {
        var file = JsonSerializer.SerializeToNode(config, FileKeysOnly)!.AsObject();
        foreach (var (key, value) in releaseOnly) file[key] = value?.DeepClone();
        return Sorted(file);
    }

    static JsonObject Sorted(JsonObject file) =>
        new(file.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, p.Value?.DeepClone())));

    static JsonArray BlockTypes(string type, int count) => new(Enumerable.Repeat(type, count).Select(t => (JsonNode?)JsonValue.Create(t)).ToArray());

    static JsonObject Parse(string json) => JsonNode.Parse(json)!.AsObject();
}
