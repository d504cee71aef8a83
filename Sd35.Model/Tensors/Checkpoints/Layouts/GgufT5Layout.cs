namespace Sd35.Tensors.Checkpoints.Layouts;

/// <summary>
/// A T5 encoder under llama.cpp's GGUF names (as the community's T5-XXL GGUF files hold it) against transformers'
/// names. Facts from llama.cpp's <c>gguf-py</c> tensor map (<c>t5encoder</c>): <c>token_embd</c> is <c>shared</c>,
/// <c>enc.blk.N.attn_{q,k,v,o}</c> the self-attention, <c>attn_rel_b</c> its relative bias (block 0), <c>attn_norm</c> /
/// <c>ffn_norm</c> the two layer norms, <c>ffn_gate</c>, <c>ffn_up</c>, <c>ffn_down</c> the gated feed-forward's
/// <c>wi_0</c>, <c>wi_1</c>, <c>wo</c>, <c>enc.output_norm</c> the final norm. Pure renames.
/// </summary>
static class GgufT5Layout
{
    public const string BlockPrefix = "enc.blk.";

    static readonly (string Model, string Stored)[] BlockNames =
    [
        ("layer.0.SelfAttention.q", "attn_q"), ("layer.0.SelfAttention.k", "attn_k"), ("layer.0.SelfAttention.v", "attn_v"),
        ("layer.0.SelfAttention.o", "attn_o"), ("layer.0.SelfAttention.relative_attention_bias", "attn_rel_b"),
        ("layer.0.layer_norm", "attn_norm"), ("layer.1.layer_norm", "ffn_norm"),
        ("layer.1.DenseReluDense.wi_0", "ffn_gate"), ("layer.1.DenseReluDense.wi_1", "ffn_up"), ("layer.1.DenseReluDense.wo", "ffn_down"),
    ];

    public static IEnumerable<KeyRule> Rules(int blocks)
    {
        yield return KeyRule.Same("shared.weight", "token_embd.weight");
        yield return KeyRule.Same("encoder.final_layer_norm.weight", "enc.output_norm.weight");
        for (int i = 0; i < blocks; i++)
            foreach (var (model, stored) in BlockNames)
                yield return KeyRule.Same($"encoder.block.{i}.{model}.weight", $"{BlockPrefix}{i}.{stored}.weight");
    }

    public static IEnumerable<KeyRule> RulesFor(ICollection<string> storedKeys) =>
        Rules(Sd3OriginalLayout.BlockIndices(storedKeys, BlockPrefix).DefaultIfEmpty(-1).Max() + 1);

    /// <summary>For writing: transformers' second name of the tied embedding is the same stored tensor.</summary>
    public static IEnumerable<KeyRule> RulesForModel(ICollection<string> modelKeys) =>
        Rules(Sd3OriginalLayout.BlockIndices(modelKeys, "encoder.block.").DefaultIfEmpty(-1).Max() + 1)
            .Append(KeyRule.Same("encoder.embed_tokens.weight", "token_embd.weight"));
}
