using System.Text.Json.Nodes;

namespace Sd35.Tools.Synthetic;

/// <summary>
/// The configuration files of the public <c>stabilityai/stable-diffusion-3.5-large</c> diffusers release, with its
/// keys and values (transformer, scheduler and model_index as published; the text encoders' and the VAE's as
/// transformers / diffusers write them for those architectures). A synthetic model folder writes these, so it is
/// read by exactly the code path that reads the release.
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

    public static JsonObject Scheduler() => Parse("""
        { "_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.31.0.dev0", "num_train_timesteps": 1000, "shift": 3.0 }
        """);

    public static JsonObject Transformer() => Parse("""
        {
          "_class_name": "SD3Transformer2DModel",
          "_diffusers_version": "0.31.0.dev0",
          "attention_head_dim": 64,
          "caption_projection_dim": 2432,
          "in_channels": 16,
          "joint_attention_dim": 4096,
          "num_attention_heads": 38,
          "num_layers": 38,
          "out_channels": 16,
          "patch_size": 2,
          "pooled_projection_dim": 2048,
          "pos_embed_max_size": 192,
          "qk_norm": "rms_norm",
          "sample_size": 128
        }
        """);

    /// <summary>CLIP ViT-L/14's text tower with projection (<c>text_encoder/</c>); SD3's files keep the legacy ids bos 0, eos 2, pad 1.</summary>
    public static JsonObject ClipL() => Clip(hidden: 768, intermediate: 3072, layers: 12, heads: 12, act: "quick_gelu");

    /// <summary>OpenCLIP ViT-bigG/14's text tower with projection (<c>text_encoder_2/</c>).</summary>
    public static JsonObject ClipG() => Clip(hidden: 1280, intermediate: 5120, layers: 32, heads: 20, act: "gelu");

    public static JsonObject Clip(int hidden, int intermediate, int layers, int heads, string act) => Parse($$"""
        {
          "architectures": ["CLIPTextModelWithProjection"],
          "attention_dropout": 0.0,
          "bos_token_id": 0,
          "dropout": 0.0,
          "eos_token_id": 2,
          "hidden_act": "{{act}}",
          "hidden_size": {{hidden}},
          "initializer_factor": 1.0,
          "initializer_range": 0.02,
          "intermediate_size": {{intermediate}},
          "layer_norm_eps": 1e-05,
          "max_position_embeddings": 77,
          "model_type": "clip_text_model",
          "num_attention_heads": {{heads}},
          "num_hidden_layers": {{layers}},
          "pad_token_id": 1,
          "projection_dim": {{hidden}},
          "torch_dtype": "float16",
          "transformers_version": "4.41.2",
          "vocab_size": 49408
        }
        """);

    /// <summary>T5 v1.1 XXL, of which SD3 uses the encoder (<c>text_encoder_3/</c>).</summary>
    public static JsonObject T5Xxl() => Parse("""
        {
          "architectures": ["T5EncoderModel"],
          "classifier_dropout": 0.0,
          "d_ff": 10240,
          "d_kv": 64,
          "d_model": 4096,
          "decoder_start_token_id": 0,
          "dense_act_fn": "gelu_new",
          "dropout_rate": 0.1,
          "eos_token_id": 1,
          "feed_forward_proj": "gated-gelu",
          "initializer_factor": 1.0,
          "is_encoder_decoder": true,
          "is_gated_act": true,
          "layer_norm_epsilon": 1e-06,
          "model_type": "t5",
          "num_decoder_layers": 24,
          "num_heads": 64,
          "num_layers": 24,
          "output_past": true,
          "pad_token_id": 0,
          "relative_attention_max_distance": 128,
          "relative_attention_num_buckets": 32,
          "tie_word_embeddings": false,
          "torch_dtype": "float16",
          "transformers_version": "4.41.2",
          "use_cache": true,
          "vocab_size": 32128
        }
        """);

    public static JsonObject Vae() => Parse("""
        {
          "_class_name": "AutoencoderKL",
          "_diffusers_version": "0.31.0.dev0",
          "act_fn": "silu",
          "block_out_channels": [128, 256, 512, 512],
          "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
          "force_upcast": true,
          "in_channels": 3,
          "latent_channels": 16,
          "latents_mean": null,
          "latents_std": null,
          "layers_per_block": 2,
          "mid_block_add_attention": true,
          "norm_num_groups": 32,
          "out_channels": 3,
          "sample_size": 1024,
          "scaling_factor": 1.5305,
          "shift_factor": 0.0609,
          "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
          "use_post_quant_conv": false,
          "use_quant_conv": false
        }
        """);

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

    static JsonObject Parse(string json) => JsonNode.Parse(json)!.AsObject();
}
