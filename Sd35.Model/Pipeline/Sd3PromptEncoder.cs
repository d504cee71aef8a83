using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Tokenizers;
using static TorchSharp.torch;
using Sd35.Profiling;

namespace Sd35.Pipeline;

/// <summary>
/// SD3's prompt encoding, as diffusers' <c>StableDiffusion3Pipeline.encode_prompt</c> does it:
/// <list type="bullet">
/// <item>CLIP-L and CLIP-G (77 tokens each) give their penultimate hidden state (<c>hidden_states[-2]</c>, or
/// <c>[-(clip_skip + 2)]</c>) and their projected pooled output;</item>
/// <item>the two hidden states are concatenated on features (768 + 1280) and zero-padded to the T5 width;</item>
/// <item>the T5 output (max_sequence_length tokens) follows on the sequence: 77 + max_sequence_length tokens;</item>
/// <item>pooled = CLIP-L text_embeds ‖ CLIP-G text_embeds.</item>
/// </list>
/// Without T5, diffusers puts zeros of shape (batch, 77, joint_attention_dim) in its place — 77 is the CLIP
/// tokenizer length (<c>tokenizer_max_length</c>), not max_sequence_length — and so does this class.
/// </summary>
public sealed class Sd3PromptEncoder
{
    /// <summary>diffusers' <c>tokenizer_max_length</c>: the CLIP tokenizers' <c>model_max_length</c>.</summary>
    public const int ClipTokens = 77;

    readonly ClipTextModel _clipL;
    readonly ClipTextModel _clipG;
    readonly T5EncoderModel? _t5;
    readonly TokenizerSet? _tokenizers;

    /// <summary>The width of every token of <c>prompt_embeds</c>: the MMDiT's <c>joint_attention_dim</c>.</summary>
    public int JointAttentionDim { get; }

    /// <param name="t5">null runs without T5, as diffusers with <c>text_encoder_3=None</c>.</param>
    /// <param name="jointAttentionDim">the transformer's <c>joint_attention_dim</c>; must equal T5's d_model when T5 is present.</param>
    /// <param name="tokenizers">needed only to encode text; <see cref="EncodeIds"/> works without them.</param>
    public Sd3PromptEncoder(ClipTextModel clipL, ClipTextModel clipG, T5EncoderModel? t5, int jointAttentionDim, TokenizerSet? tokenizers = null)
    {
        _clipL = clipL;
        _clipG = clipG;
        _t5 = t5;
        _tokenizers = tokenizers;
        JointAttentionDim = jointAttentionDim;
        if (WidthProblem(clipL.Config, clipG.Config, t5?.Config, jointAttentionDim) is { } problem)
            throw new ArgumentException(problem);
    }

    /// <summary>
    /// The widths <c>encode_prompt</c> joins: the two CLIP hidden states side by side must fit in joint_attention_dim
    /// (the rest is zero padding), and T5's d_model must be it. Null when they fit; otherwise what is wrong
    /// (the pipeline's components check it before loading any weights, this encoder again when built).
    /// </summary>
    public static string? WidthProblem(ClipTextConfig clipL, ClipTextConfig clipG, T5Config? t5, int jointAttentionDim)
    {
        int clipWidth = clipL.HiddenSize + clipG.HiddenSize;
        if (clipWidth > jointAttentionDim) return $"the two CLIP hidden states together ({clipWidth} features) are wider than joint_attention_dim {jointAttentionDim}";
        if (t5 is not null && t5.DModel != jointAttentionDim) return $"T5's d_model {t5.DModel} differs from joint_attention_dim {jointAttentionDim}";
        return null;
    }

    /// <summary>When set, the CLIP and T5 forwards add the seconds of their sections here (the perf tests' clip/t5 sections).</summary>
    public StageTimings? Timings { get; init; }

    /// <summary>
    /// <c>encode_prompt</c> from text: the positive side, and with <paramref name="classifierFreeGuidance"/> the
    /// negative side. As in diffusers, <paramref name="clipSkip"/> applies to the positive side only.
    /// </summary>
    public EncodedPrompt Encode(Sd3Prompt prompt, bool classifierFreeGuidance = true, int maxSequenceLength = 256,
        int? clipSkip = null, int numImagesPerPrompt = 1)
    {
        var positive = EncodeTexts(prompt.Positive(), maxSequenceLength, clipSkip, numImagesPerPrompt);
        if (!classifierFreeGuidance) return new EncodedPrompt(positive, null);
        try
        {
            return new EncodedPrompt(positive, EncodeTexts(prompt.Negative(), maxSequenceLength, clipSkip: null, numImagesPerPrompt));
        }
        catch
        {
            positive.Dispose();
            throw;
        }
    }

    /// <summary>The three tokenizations of a batch of texts, as (batch, length) int64 tensors; T5 ids only when T5 is present.</summary>
    public (Tensor ClipL, Tensor ClipG, Tensor? T5) Tokenize(
        (IReadOnlyList<string> ClipL, IReadOnlyList<string> ClipG, IReadOnlyList<string> T5) texts, int maxSequenceLength)
    {
        var tokenizers = _tokenizers ?? throw new InvalidOperationException("this prompt encoder was built without tokenizers; use EncodeIds");
        return (Ids(tokenizers.ClipL, texts.ClipL, ClipTokens, "CLIP-L"),
            Ids(tokenizers.ClipG, texts.ClipG, ClipTokens, "CLIP-G"),
            _t5 is null ? null : Ids(tokenizers.T5, texts.T5, maxSequenceLength, "T5"));
    }

    PromptEmbeddings EncodeTexts((IReadOnlyList<string> ClipL, IReadOnlyList<string> ClipG, IReadOnlyList<string> T5) texts,
        int maxSequenceLength, int? clipSkip, int numImagesPerPrompt)
    {
        var (clipL, clipG, t5) = Tokenize(texts, maxSequenceLength);
        using (clipL)
        using (clipG)
        using (t5)
            return EncodeIds(clipL, clipG, t5, clipSkip, numImagesPerPrompt);
    }

    /// <summary>
    /// One side of <c>encode_prompt</c> from token ids: <paramref name="clipLIds"/>, <paramref name="clipGIds"/>
    /// (batch, 77) and <paramref name="t5Ids"/> (batch, max_sequence_length), ignored and allowed null without T5.
    /// </summary>
    public PromptEmbeddings EncodeIds(Tensor clipLIds, Tensor clipGIds, Tensor? t5Ids, int? clipSkip = null, int numImagesPerPrompt = 1)
    {
        if (numImagesPerPrompt < 1) throw new ArgumentOutOfRangeException(nameof(numImagesPerPrompt), "must be at least 1");
        using var scope = NewDisposeScope();
        var (clipLHidden, clipLPooled) = EncodeClip(_clipL, clipLIds, clipSkip, "CLIP-L");
        var (clipGHidden, clipGPooled) = EncodeClip(_clipG, clipGIds, clipSkip, "CLIP-G");
        // diffusers casts both CLIP hidden states to text_encoder's (CLIP-L's) dtype.
        var clipHidden = cat([clipLHidden, clipGHidden.to(clipLHidden.dtype)], -1);
        var t5Hidden = EncodeT5(t5Ids, clipLIds.shape[0], clipHidden.dtype, clipHidden.device);
        var padded = nn.functional.pad(clipHidden, [0, t5Hidden.shape[^1] - clipHidden.shape[^1]]);
        var promptEmbeds = cat([padded, t5Hidden], 1);
        var pooled = cat([clipLPooled, clipGPooled], -1);
        // diffusers' repeat(1, n, 1).view(batch·n, …): each prompt's copies are adjacent.
        if (numImagesPerPrompt > 1)
        {
            promptEmbeds = promptEmbeds.repeat_interleave(numImagesPerPrompt, 0);
            pooled = pooled.repeat_interleave(numImagesPerPrompt, 0);
        }
        return new PromptEmbeddings(promptEmbeds.MoveToOuterDisposeScope(), pooled.MoveToOuterDisposeScope());
    }

    (Tensor Hidden, Tensor Pooled) EncodeClip(ClipTextModel model, Tensor ids, int? clipSkip, string what)
    {
        RequireShape(ids, ClipTokens, what);
        using var section = Instrumentation.InSection(PerfSections.ClipEncoding, Timings is { } timings ? s => timings.ClipEncodingSeconds += s : null);
        var output = model.forward(ids);
        return (output.HiddenState(-(clipSkip ?? 0) - 2), output.TextEmbeds!);
    }

    Tensor EncodeT5(Tensor? ids, long batch, ScalarType clipDType, Device device)
    {
        if (_t5 is null) return zeros([batch, ClipTokens, JointAttentionDim], clipDType, device);
        if (ids is null) throw new ArgumentNullException(nameof(ids), "T5 is present, so T5 token ids are required");
        if (ids.shape[0] != batch) throw new ArgumentException($"T5 ids have batch {ids.shape[0]}, CLIP ids {batch}");
        using var section = Instrumentation.InSection(PerfSections.T5Encoding, Timings is { } timings ? s => timings.T5EncodingSeconds += s : null);
        return _t5.forward(ids);
    }

    static void RequireShape(Tensor ids, long tokens, string what)
    {
        if (ids.dim() != 2 || ids.shape[1] != tokens)
            throw new ArgumentException($"{what} ids must be (batch, {tokens}), got [{string.Join(", ", ids.shape)}]");
    }

    static Tensor Ids(IPromptTokenizer tokenizer, IReadOnlyList<string> texts, int length, string what)
    {
        var rows = new long[texts.Count * length];
        for (int i = 0; i < texts.Count; i++)
        {
            var ids = tokenizer.Encode(texts[i], length);
            if (ids.Length != length) throw new InvalidOperationException($"the {what} tokenizer returned {ids.Length} ids, expected {length}");
            for (int j = 0; j < length; j++) rows[i * length + j] = ids[j];
        }
        return tensor(rows, [texts.Count, length]);
    }
}
