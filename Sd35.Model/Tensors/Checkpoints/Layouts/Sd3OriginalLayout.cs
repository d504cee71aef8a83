namespace Sd35.Tensors.Checkpoints.Layouts;

/// <summary>
/// The MMDiT under its original SD3 names (Stability's <c>sd3_impls</c>, as the release's single file, ComfyUI and the
/// community's GGUF files hold it) against the diffusers names the project's <c>SD3Transformer2DModel</c> uses.
/// Facts from diffusers' <c>convert_sd3_transformer_checkpoint_to_diffusers</c>: <c>joint_blocks.N.x_block</c> /
/// <c>context_block</c> are the image / text halves of a joint block; <c>attn.qkv</c> holds q, k, v stacked by rows;
/// <c>ln_q</c>/<c>ln_k</c> are the qk RMS norms; <c>attn2</c> is MMDiT-X's second image attention (SD3.5 Medium); the
/// final layer's modulation (and that of a text half that ends the stack, "pre-only") orders shift before scale.
/// </summary>
static class Sd3OriginalLayout
{
    public const string BlockPrefix = "joint_blocks.";

    /// <summary>Every rule for a stack of <paramref name="numLayers"/> joint blocks.</summary>
    /// <param name="contextPreOnly">whether block N's text half ends the stack (no output projection or MLP; its modulation is swapped)</param>
    public static IEnumerable<KeyRule> Rules(int numLayers, Func<int, bool> contextPreOnly)
    {
        foreach (var rule in Linear("pos_embed.proj", "x_embedder.proj")) yield return rule;
        yield return KeyRule.Same("pos_embed.pos_embed", "pos_embed");
        foreach (var (model, stored) in new[]
        {
            ("time_text_embed.timestep_embedder.linear_1", "t_embedder.mlp.0"), ("time_text_embed.timestep_embedder.linear_2", "t_embedder.mlp.2"),
            ("time_text_embed.text_embedder.linear_1", "y_embedder.mlp.0"), ("time_text_embed.text_embedder.linear_2", "y_embedder.mlp.2"),
            ("context_embedder", "context_embedder"), ("proj_out", "final_layer.linear"),
        })
            foreach (var rule in Linear(model, stored)) yield return rule;
        foreach (var rule in Linear("norm_out.linear", "final_layer.adaLN_modulation.1", swapHalves: true)) yield return rule;

        for (int i = 0; i < numLayers; i++)
        {
            string m = $"transformer_blocks.{i}.", x = $"{BlockPrefix}{i}.x_block.", c = $"{BlockPrefix}{i}.context_block.";
            bool preOnly = contextPreOnly(i);
            foreach (var rule in Qkv(m + "attn.to_", "", x + "attn.qkv")) yield return rule;
            foreach (var rule in Qkv(m + "attn.add_", "_proj", c + "attn.qkv")) yield return rule;
            foreach (var rule in Qkv(m + "attn2.to_", "", x + "attn2.qkv")) yield return rule;
            foreach (var (model, stored) in new[]
            {
                ("attn.norm_q", x + "attn.ln_q"), ("attn.norm_k", x + "attn.ln_k"),
                ("attn.norm_added_q", c + "attn.ln_q"), ("attn.norm_added_k", c + "attn.ln_k"),
                ("attn2.norm_q", x + "attn2.ln_q"), ("attn2.norm_k", x + "attn2.ln_k"),
            })
                yield return KeyRule.Same(m + model + ".weight", stored + ".weight");
            foreach (var (model, stored) in new[]
            {
                ("attn.to_out.0", x + "attn.proj"), ("attn.to_add_out", c + "attn.proj"), ("attn2.to_out.0", x + "attn2.proj"),
                ("norm1.linear", x + "adaLN_modulation.1"),
                ("ff.net.0.proj", x + "mlp.fc1"), ("ff.net.2", x + "mlp.fc2"),
                ("ff_context.net.0.proj", c + "mlp.fc1"), ("ff_context.net.2", c + "mlp.fc2"),
            })
                foreach (var rule in Linear(m + model, stored)) yield return rule;
            foreach (var rule in Linear(m + "norm1_context.linear", c + "adaLN_modulation.1", swapHalves: preOnly)) yield return rule;
        }
    }

    /// <summary>The rules for the blocks a stored checkpoint holds (pre-only text halves found by their missing MLP).</summary>
    public static IEnumerable<KeyRule> RulesFor(ICollection<string> storedKeys)
    {
        int layers = BlockIndices(storedKeys, BlockPrefix).DefaultIfEmpty(-1).Max() + 1;
        return Rules(layers, i => !storedKeys.Contains($"{BlockPrefix}{i}.context_block.mlp.fc1.weight"));
    }

    /// <summary>The rules for writing a diffusers-named transformer in the original names.</summary>
    public static IEnumerable<KeyRule> RulesForModel(ICollection<string> modelKeys)
    {
        int layers = BlockIndices(modelKeys, "transformer_blocks.").DefaultIfEmpty(-1).Max() + 1;
        return Rules(layers, i => !modelKeys.Contains($"transformer_blocks.{i}.ff_context.net.0.proj.weight"));
    }

    /// <summary>The N of every key <c>{prefix}N.…</c>.</summary>
    public static IEnumerable<int> BlockIndices(IEnumerable<string> keys, string prefix) =>
        keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal))
            .Select(k => k.IndexOf('.', prefix.Length) is int dot and > 0 && int.TryParse(k.AsSpan(prefix.Length, dot - prefix.Length), out int n) ? n : -1)
            .Where(n => n >= 0)
            .Distinct();

    static IEnumerable<KeyRule> Linear(string model, string stored, bool swapHalves = false) =>
        [new(model + ".weight", stored + ".weight", SwapHalves: swapHalves), new(model + ".bias", stored + ".bias", SwapHalves: swapHalves)];

    static IEnumerable<KeyRule> Qkv(string modelStart, string modelEnd, string stored) =>
        from part in new[] { "weight", "bias" }
        from i in Enumerable.Range(0, 3)
        select new KeyRule($"{modelStart}{"qkv"[i]}{modelEnd}.{part}", $"{stored}.{part}", Chunk: i, Chunks: 3);
}
