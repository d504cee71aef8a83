using System.Text.Json.Nodes;
using FluentAssertions;
using Sd35.Errors;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;

namespace Sd35.Tests.Tensors.Checkpoints;

/// <summary>
/// Every model config is read by <see cref="ModelConfig"/> and range-checked: the tiny reference components' configs,
/// each with one value made wrong in a scratch folder, must fail with a <see cref="ConfigException"/> that names the
/// file, the JSON path and the value, before any weights are read.
/// </summary>
public class ModelConfigTests
{
    static readonly Dictionary<string, string> Fixtures = new()
    {
        ["transformer"] = "transformer/tiny",
        ["clip"] = "text_encoder/clip_l_tiny",
        ["t5"] = "text_encoder/t5_tiny",
        ["vae"] = "vae/vae_tiny",
        ["scheduler"] = "scheduler",
    };

    /// <summary>A scratch copy of a tiny component's config with <paramref name="key"/> set to <paramref name="json"/> (or removed, for null).</summary>
    static (TempDirectory Dir, string File) Mutated(string component, string key, string? json)
    {
        var dir = new TempDirectory();
        var name = component == "scheduler" ? FlowMatchEulerSchedulerConfig.FileName : "config.json";
        var root = JsonNode.Parse(File.ReadAllText(RepoPaths.Fixtures("reference", Fixtures[component], name)))!.AsObject();
        if (json is null) root.Remove(key);
        else root[key] = JsonNode.Parse(json);
        var file = dir.File(name);
        File.WriteAllText(file, root.ToJsonString());
        return (dir, file);
    }

    static void Read(string component, ModelFolder folder)
    {
        switch (component)
        {
            case "transformer": folder.ReadConfig<SD3TransformerConfig>(); break;
            case "clip": folder.ReadConfig<ClipTextConfig>(); break;
            case "t5": folder.ReadConfig<T5Config>(); break;
            case "vae": folder.ReadConfig<AutoencoderKLConfig>(); break;
            default: folder.ReadConfig<FlowMatchEulerSchedulerConfig>(FlowMatchEulerSchedulerConfig.FileName); break;
        }
    }

    [Theory]
    // The values issue 12 found crashing the demo (DivideByZero, libtorch "negative dimension", "multiples of 0").
    [InlineData("clip", "num_attention_heads", "0", "$.num_attention_heads", "0")]
    [InlineData("transformer", "patch_size", "0", "$.patch_size", "0")]
    [InlineData("t5", "d_model", "-5", "$.d_model", "-5")]
    [InlineData("transformer", "num_layers", "-1", "$.num_layers", "-1")]
    [InlineData("t5", "num_layers", "-1", "$.num_layers", "-1")]
    [InlineData("vae", "block_out_channels", "[]", "$.block_out_channels", "empty")]
    // Further range checks, one per field the models use.
    [InlineData("transformer", "num_attention_heads", "0", "$.num_attention_heads", "0")]
    [InlineData("transformer", "attention_head_dim", "-16", "$.attention_head_dim", "-16")]
    [InlineData("transformer", "caption_projection_dim", "60", "$.caption_projection_dim", "60")]
    [InlineData("transformer", "sample_size", "0", "$.sample_size", "0")]
    [InlineData("transformer", "pos_embed_max_size", "4", "$.pos_embed_max_size", "4")]
    [InlineData("transformer", "in_channels", "0", "$.in_channels", "0")]
    [InlineData("transformer", "out_channels", "-3", "$.out_channels", "-3")]
    [InlineData("transformer", "joint_attention_dim", "0", "$.joint_attention_dim", "0")]
    [InlineData("transformer", "pooled_projection_dim", "0", "$.pooled_projection_dim", "0")]
    [InlineData("transformer", "dual_attention_layers", "[0, 3]", "$.dual_attention_layers[1]", "3")]
    [InlineData("transformer", "qk_norm", "\"layer_norm\"", "$.qk_norm", "layer_norm")]
    [InlineData("clip", "hidden_size", "30", "$.num_attention_heads", "30")]
    [InlineData("clip", "hidden_size", "0", "$.hidden_size", "0")]
    [InlineData("clip", "vocab_size", "0", "$.vocab_size", "0")]
    [InlineData("clip", "intermediate_size", "-1", "$.intermediate_size", "-1")]
    [InlineData("clip", "projection_dim", "0", "$.projection_dim", "0")]
    [InlineData("clip", "num_hidden_layers", "0", "$.num_hidden_layers", "0")]
    [InlineData("clip", "max_position_embeddings", "0", "$.max_position_embeddings", "0")]
    [InlineData("clip", "layer_norm_eps", "0", "$.layer_norm_eps", "0")]
    [InlineData("clip", "eos_token_id", "49408", "$.eos_token_id", "49408")]
    [InlineData("clip", "hidden_act", "\"swish\"", "$.hidden_act", "swish")]
    [InlineData("clip", "model_type", "\"t5\"", "$.model_type", "t5")]
    [InlineData("t5", "num_heads", "0", "$.num_heads", "0")]
    [InlineData("t5", "d_kv", "0", "$.d_kv", "0")]
    [InlineData("t5", "d_ff", "0", "$.d_ff", "0")]
    [InlineData("t5", "vocab_size", "-1", "$.vocab_size", "-1")]
    [InlineData("t5", "layer_norm_epsilon", "-1e-6", "$.layer_norm_epsilon", "-1E-06")]
    [InlineData("t5", "relative_attention_num_buckets", "2", "$.relative_attention_num_buckets", "2")]
    [InlineData("t5", "relative_attention_max_distance", "8", "$.relative_attention_max_distance", "8")]
    [InlineData("t5", "feed_forward_proj", "\"relu\"", "$.feed_forward_proj", "relu")]
    [InlineData("t5", "dense_act_fn", "\"swish\"", "$.dense_act_fn", "swish")]
    [InlineData("vae", "block_out_channels", "[16, -32, 32]", "$.block_out_channels[1]", "-32")]
    [InlineData("vae", "block_out_channels", "[16, 12, 32]", "$.block_out_channels[1]", "12")]
    [InlineData("vae", "norm_num_groups", "0", "$.norm_num_groups", "0")]
    [InlineData("vae", "latent_channels", "0", "$.latent_channels", "0")]
    [InlineData("vae", "out_channels", "0", "$.out_channels", "0")]
    [InlineData("vae", "layers_per_block", "-1", "$.layers_per_block", "-1")]
    [InlineData("vae", "scaling_factor", "0", "$.scaling_factor", "0")]
    [InlineData("vae", "act_fn", "\"gelu\"", "$.act_fn", "gelu")]
    [InlineData("vae", "up_block_types", "[\"UpDecoderBlock2D\"]", "$.up_block_types", "1 blocks")]
    [InlineData("vae", "up_block_types", "[\"UpDecoderBlock2D\", \"AttnUpDecoderBlock2D\", \"UpDecoderBlock2D\"]", "$.up_block_types[1]", "AttnUpDecoderBlock2D")]
    [InlineData("scheduler", "shift", "0", "$.shift", "0")]
    [InlineData("scheduler", "num_train_timesteps", "0", "$.num_train_timesteps", "0")]
    [InlineData("scheduler", "use_karras_sigmas", "true", "$.use_karras_sigmas", "true")]
    public void An_out_of_range_value_names_the_file_the_path_and_the_value(string component, string key, string json, string path, string shown)
    {
        var (dir, file) = Mutated(component, key, json);
        using (dir)
        {
            var act = () => Read(component, new ModelFolder(dir.Path));
            var error = act.Should().Throw<ConfigException>().Which;
            (error.File, error.JsonPath).Should().Be((file, path));
            error.Message.Should().StartWith($"{file}: {path}: ").And.Contain(shown);
        }
    }

    [Theory]
    [InlineData("transformer", "num_layers", "\"3\"", "$.num_layers", "an integer")]
    [InlineData("transformer", "attention_head_dim", "16.5", "$.attention_head_dim", "an integer")]
    [InlineData("transformer", "num_attention_heads", "null", "$.num_attention_heads", "an integer")]
    [InlineData("transformer", "dual_attention_layers", "{}", "$.dual_attention_layers", "an array")]
    [InlineData("clip", "layer_norm_eps", "\"small\"", "$.layer_norm_eps", "a number")]
    [InlineData("vae", "block_out_channels", "[16, \"32\"]", "$.block_out_channels[1]", "an integer")]
    [InlineData("vae", "use_post_quant_conv", "1", "$.use_post_quant_conv", "true or false")]
    [InlineData("t5", "d_model", "4e40", "$.d_model", "an integer")]
    public void A_value_of_the_wrong_JSON_type_names_the_path(string component, string key, string json, string path, string expected)
    {
        var (dir, file) = Mutated(component, key, json);
        using (dir)
        {
            var act = () => Read(component, new ModelFolder(dir.Path));
            var error = act.Should().Throw<ConfigException>().Which;
            (error.File, error.JsonPath).Should().Be((file, path));
            error.Message.Should().Contain($"expected {expected}");
        }
    }

    [Theory]
    [InlineData("{\"num_layers\": 3,", "not valid JSON")]
    [InlineData("", "not valid JSON")]
    [InlineData("[1, 2]", "expected a JSON object")]
    [InlineData("null", "null")]
    [InlineData("{\"num_layers\": 3, \"num_layers\": 4}", "num_layers")]
    public void A_file_that_is_not_a_config_object_names_the_file(string content, string expected)
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("config.json"), content);
        var act = () => new ModelFolder(dir.Path).ReadConfig<SD3TransformerConfig>();
        var error = act.Should().Throw<ConfigException>().Which;
        error.File.Should().Be(dir.File("config.json"));
        error.Message.Should().Contain(expected);
    }

    [Fact]
    public void A_missing_config_names_the_file()
    {
        using var dir = new TempDirectory();
        var act = () => new ModelFolder(dir.Path).ReadConfig<ClipTextConfig>();
        act.Should().Throw<ConfigException>().Which.File.Should().Be(dir.File("config.json"));
    }

    sealed record WithRequiredKey : IModelConfig
    {
        [System.Text.Json.Serialization.JsonPropertyName("hidden_size")]
        [System.Text.Json.Serialization.JsonRequired]
        public int HiddenSize { get; init; }

        public void Validate(string file) { }
    }

    [Fact]
    public void A_missing_required_key_is_named()
    {
        var act = () => ModelConfig.Parse<WithRequiredKey>("{}", "x/config.json");
        act.Should().Throw<ConfigException>().WithMessage("x/config.json: $: *hidden_size*");
    }

    [Fact]
    public void Absent_keys_take_the_library_defaults()
    {
        ModelConfig.Parse<ClipTextConfig>("{}").Should().Be(new ClipTextConfig());
        ModelConfig.Parse<T5Config>("""{"feed_forward_proj": "gated-gelu"}""").DenseActFn.Should().Be("gelu_new");
        ModelConfig.Parse<AutoencoderKLConfig>("""{"shift_factor": null}""").ShiftFactor.Should().BeNull();
    }

    [Theory]
    [InlineData("clip", "num_attention_heads", "0")]
    [InlineData("t5", "d_model", "-5")]
    [InlineData("transformer", "patch_size", "0")]
    [InlineData("vae", "block_out_channels", "[]")]
    public void Loading_a_model_from_a_bad_folder_fails_on_the_config_before_the_weights(string component, string key, string json)
    {
        // No weights in the folder at all: the config must fail first.
        var (dir, file) = Mutated(component, key, json);
        using (dir)
        {
            var folder = new ModelFolder(dir.Path);
            Action load = component switch
            {
                "clip" => () => ClipTextModel.FromFolder(folder).Dispose(),
                "t5" => () => T5EncoderModel.FromFolder(folder).Dispose(),
                "transformer" => () => SD3Transformer2DModel.FromFolder(folder).Dispose(),
                _ => () => AutoencoderKLDecoder.FromFolder(folder).Dispose(),
            };
            load.Should().Throw<ConfigException>().Which.File.Should().Be(file);
        }
    }

    [Fact]
    public void A_folder_reads_its_config_once()
    {
        var folder = new ModelFolder(RepoPaths.Fixtures("reference", "transformer", "tiny"));
        folder.ReadConfig<SD3TransformerConfig>().Should().BeSameAs(folder.ReadConfig<SD3TransformerConfig>());
    }

    [Fact]
    public void Pipeline_components_read_every_config_up_front_and_the_models_share_the_records()
    {
        var (components, _) = Pipeline.PipelineGoldenTests.Load(Path.Combine("reference", "pipeline", "case0"));
        components.TransformerConfig.Should().BeSameAs(components.Transformer.ReadConfig<SD3TransformerConfig>());
        components.VaeConfig.ScaleFactor.Should().Be(4, "the tiny VAE has three blocks: 2^(3-1)");
        components.TextEncoder3Config!.DModel.Should().Be(components.TransformerConfig.JointAttentionDim);
        using var vae = AutoencoderKLDecoder.FromFolder(components.Vae);
        vae.Config.Should().BeSameAs(components.VaeConfig);
    }

    [Fact]
    public void Parts_that_do_not_fit_together_are_named_before_any_weights_load()
    {
        using var dir = new TempDirectory();
        foreach (var (part, source) in new[] { ("transformer", "transformer/tiny"), ("vae", "vae/vae_tiny"), ("clip_l", "text_encoder/clip_l_tiny"), ("clip_g", "text_encoder/clip_g_tiny") })
        {
            Directory.CreateDirectory(dir.File(part));
            var text = File.ReadAllText(RepoPaths.Fixtures("reference", source, "config.json"));
            if (part == "vae") text = text.Replace("\"latent_channels\": 16", "\"latent_channels\": 4");
            File.WriteAllText(Path.Combine(dir.File(part), "config.json"), text);
        }
        ModelFolder Folder(string part) => new(dir.File(part));
        var act = () => new PipelineComponents(Folder("transformer"), Folder("vae"), Folder("clip_l"), Folder("clip_g"), null,
            () => throw new InvalidOperationException(), new FlowMatchEulerSchedulerConfig(), "test");
        act.Should().Throw<ConfigException>().WithMessage("*transformer*config.json: $.in_channels: *latent_channels 4*");
    }
}
