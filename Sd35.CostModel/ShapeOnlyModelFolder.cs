using System.Text.Json;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Vae;

namespace Sd35.CostModeling;

/// <summary>
/// A diffusers-layout model folder holding only the configs of a <see cref="Workload"/> (no weights): what the real
/// pipeline reads to build its models. On the meta device the models are built from these configs and no weights
/// are read, so the dry run goes through the pipeline's own loading and stage code.
/// </summary>
public static class ShapeOnlyModelFolder
{
    static readonly JsonSerializerOptions s_json = new() { WriteIndented = true };

    /// <summary>Writes the folder under a fresh temporary directory and returns its path.</summary>
    public static string Write(Workload w)
    {
        string root = Path.Combine(Path.GetTempPath(), "sd35-costmodel", Guid.NewGuid().ToString("N"));
        Part(root, "transformer", JsonSerializer.Serialize(w.Transformer, s_json));
        Part(root, "text_encoder", Clip(w.ClipL));
        Part(root, "text_encoder_2", Clip(w.ClipG));
        if (w.T5 is { } t5) Part(root, "text_encoder_3", T5(t5));
        Part(root, "vae", Vae(w.Vae));
        return root;
    }

    static void Part(string root, string name, string json)
    {
        var dir = Path.Combine(root, name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), json);
    }

    static string Clip(ClipTextConfig c) => JsonSerializer.Serialize(new
    {
        model_type = ClipTextConfig.ModelType, c.vocab_size, c.hidden_size, c.intermediate_size, c.projection_dim, c.num_hidden_layers,
        c.num_attention_heads, c.max_position_embeddings, c.hidden_act, c.layer_norm_eps, c.eos_token_id,
    }, s_json);

    static string T5(T5Config c) => JsonSerializer.Serialize(new
    {
        model_type = T5Config.ModelType, c.vocab_size, c.d_model, c.d_kv, c.d_ff, c.num_layers, c.num_heads, c.relative_attention_num_buckets,
        c.relative_attention_max_distance, c.layer_norm_epsilon, c.feed_forward_proj, c.dense_act_fn,
    }, s_json);

    static string Vae(AutoencoderKLConfig c) => JsonSerializer.Serialize(new
    {
        in_channels = c.InChannels, out_channels = c.OutChannels, latent_channels = c.LatentChannels, block_out_channels = c.BlockOutChannels,
        up_block_types = Enumerable.Repeat("UpDecoderBlock2D", c.BlockOutChannels.Count), layers_per_block = c.LayersPerBlock,
        norm_num_groups = c.NormNumGroups, scaling_factor = c.ScalingFactor, shift_factor = c.ShiftFactor, use_quant_conv = c.UseQuantConv,
        use_post_quant_conv = c.UsePostQuantConv, mid_block_add_attention = c.MidBlockAddAttention, act_fn = "silu",
    }, s_json);
}
