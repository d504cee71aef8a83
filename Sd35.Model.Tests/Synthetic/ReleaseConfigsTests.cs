using System.Text.Json.Nodes;
using FluentAssertions;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tools.Synthetic;

namespace Sd35.Tests.Synthetic;

/// <summary>
/// The release's config files are written from the library's config records: what they say is SD3.5 Large's files,
/// key for key (the expected JSON is the release's, as the synthetic folder wrote it before it was derived), and each
/// file reads back as the record it came from.
/// </summary>
public sealed class ReleaseConfigsTests
{
    [Fact]
    public void The_transformer_file_is_the_published_one()
    {
        AssertSameFile(ReleaseConfigs.Transformer(), """
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
    }

    [Fact]
    public void The_scheduler_file_is_the_published_one()
    {
        AssertSameFile(ReleaseConfigs.Scheduler(), """
            { "_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.31.0.dev0", "num_train_timesteps": 1000, "shift": 3.0 }
            """);
    }

    [Fact]
    public void The_clip_files_are_the_release_ones_with_its_legacy_token_ids()
    {
        AssertSameFile(ReleaseConfigs.ClipL(), """
            {
              "architectures": ["CLIPTextModelWithProjection"],
              "attention_dropout": 0.0,
              "bos_token_id": 0,
              "dropout": 0.0,
              "eos_token_id": 2,
              "hidden_act": "quick_gelu",
              "hidden_size": 768,
              "initializer_factor": 1.0,
              "initializer_range": 0.02,
              "intermediate_size": 3072,
              "layer_norm_eps": 1e-05,
              "max_position_embeddings": 77,
              "model_type": "clip_text_model",
              "num_attention_heads": 12,
              "num_hidden_layers": 12,
              "pad_token_id": 1,
              "projection_dim": 768,
              "torch_dtype": "float16",
              "transformers_version": "4.41.2",
              "vocab_size": 49408
            }
            """);
        AssertSameFile(ReleaseConfigs.ClipG(), """
            {
              "architectures": ["CLIPTextModelWithProjection"],
              "attention_dropout": 0.0,
              "bos_token_id": 0,
              "dropout": 0.0,
              "eos_token_id": 2,
              "hidden_act": "gelu",
              "hidden_size": 1280,
              "initializer_factor": 1.0,
              "initializer_range": 0.02,
              "intermediate_size": 5120,
              "layer_norm_eps": 1e-05,
              "max_position_embeddings": 77,
              "model_type": "clip_text_model",
              "num_attention_heads": 20,
              "num_hidden_layers": 32,
              "pad_token_id": 1,
              "projection_dim": 1280,
              "torch_dtype": "float16",
              "transformers_version": "4.41.2",
              "vocab_size": 49408
            }
            """);
    }

    [Fact]
    public void The_t5_file_is_the_release_one()
    {
        AssertSameFile(ReleaseConfigs.T5Xxl(), """
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
    }

    [Fact]
    public void The_vae_file_is_the_release_one()
    {
        AssertSameFile(ReleaseConfigs.Vae(), """
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
    }

    [Fact]
    public void Every_file_reads_back_as_the_record_it_was_written_from()
    {
        ModelConfig.Parse<FlowMatchEulerSchedulerConfig>(ReleaseConfigs.Scheduler().ToJsonString()).Should().BeEquivalentTo(FlowMatchEulerSchedulerConfig.Sd35);
        ModelConfig.Parse<SD3TransformerConfig>(ReleaseConfigs.Transformer().ToJsonString()).Should().BeEquivalentTo(SD3TransformerConfig.SD35Large);
        ModelConfig.Parse<SD3TransformerConfig>(ReleaseConfigs.Transformer(SD3TransformerConfig.SD35Medium).ToJsonString())
            .Should().BeEquivalentTo(SD3TransformerConfig.SD35Medium, "a non-empty dual_attention_layers is written");
        ModelConfig.Parse<ClipTextConfig>(ReleaseConfigs.ClipG().ToJsonString()).Should().BeEquivalentTo(
            ClipTextConfig.ClipG with { ModelType = ClipTextConfig.ClipTextModelType, EosTokenId = 2 }, "only the legacy end id differs");
        ModelConfig.Parse<T5Config>(ReleaseConfigs.T5Xxl().ToJsonString()).Should().BeEquivalentTo(
            T5Config.T5Xxl with { ModelType = T5Config.T5ModelType, DenseActFnSetting = "gelu_new" });
        ModelConfig.Parse<AutoencoderKLConfig>(ReleaseConfigs.Vae().ToJsonString()).Should().BeEquivalentTo(
            AutoencoderKLConfig.Sd35 with { UpBlockTypes = [.. Enumerable.Repeat("UpDecoderBlock2D", 4)], DownBlockTypes = [.. Enumerable.Repeat("DownEncoderBlock2D", 4)] });
    }

    [Fact]
    public void The_tiny_preset_has_the_release_files_keys()
    {
        var (tiny, large) = (SyntheticModelPreset.Tiny, SyntheticModelPreset.Sd35Large);
        foreach (var (small, full) in new[] { (tiny.Transformer, large.Transformer), (tiny.ClipL, large.ClipL), (tiny.ClipG, large.ClipG), (tiny.T5, large.T5), (tiny.Vae, large.Vae) })
            small.Select(p => p.Key).Should().Equal(full.Select(p => p.Key));
        tiny.Transformer["num_layers"]!.GetValue<int>().Should().Be(2);
        tiny.Vae["block_out_channels"]!.AsArray().Select(v => v!.GetValue<int>()).Should().Equal(16, 16, 32, 32);
    }

    /// <summary>Same keys in the same (sorted) order and the same values, numbers compared by value (1e-05 is 1E-05).</summary>
    static void AssertSameFile(JsonObject written, string expectedJson)
    {
        var expected = JsonNode.Parse(expectedJson)!.AsObject();
        written.Select(p => p.Key).Should().Equal(expected.Select(p => p.Key));
        JsonNode.DeepEquals(written, expected).Should().BeTrue($"written:\n{written}\nexpected:\n{expected}");
    }
}
