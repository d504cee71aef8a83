using static TorchSharp.torch;

namespace Sd35.Layers.Attention;

/// <summary>
/// Softmax attention of some queries over one block of keys, kept with its log-sum-exp, in fp32. Two partials over
/// disjoint key blocks merge into the partial over their union exactly (up to rounding):
/// lse = logaddexp(lse₁, lse₂), out = out₁·e^(lse₁−lse) + out₂·e^(lse₂−lse). This is what lets each rank attend
/// to one K/V block at a time and still produce full attention.
/// </summary>
sealed class AttentionPartial(Tensor output, Tensor lse) : IDisposable
{
    /// <summary>[B, H, Nq, D]: the attention output over this block, already normalized.</summary>
    public Tensor Output { get; } = output;

    /// <summary>[B, H, Nq, 1]: log Σ exp(score) over this block's keys.</summary>
    public Tensor Lse { get; } = lse;

    /// <param name="scaledQuery">fp32 queries already multiplied by the softmax scale, [B, H, Nq, D]</param>
    /// <param name="key">fp32 keys [B, H, Nk, D], Nk ≥ 1</param>
    /// <param name="value">fp32 values [B, H, Nk, D]</param>
    /// <param name="maxScoreElements">score elements computed at once: query rows are processed in chunks of this budget</param>
    public static AttentionPartial Compute(Tensor scaledQuery, Tensor key, Tensor value, long maxScoreElements)
    {
        long batchHeads = scaledQuery.shape[0] * scaledQuery.shape[1];
        long rows = Math.Max(1, maxScoreElements / Math.Max(1, batchHeads * key.shape[2]));
        using var keyT = key.transpose(-2, -1);
        var outputs = new List<Tensor>();
        var lses = new List<Tensor>();
        // Query rows are independent, so chunking them changes nothing but the peak memory.
        for (long start = 0; start < Math.Max(1, scaledQuery.shape[2]); start += rows)
        {
            using var scope = NewDisposeScope();
            var q = scaledQuery.narrow(2, start, Math.Min(rows, scaledQuery.shape[2] - start));
            var scores = matmul(q, keyT);
            // libtorch's C++ build has no meta kernel for logsumexp; a shape-only run needs only the shape.
            var lse = Sd35.Profiling.ShapeOnly.Is(scores) ? empty([.. scores.shape[..^1], 1], scores.dtype, scores.device) : scores.logsumexp(-1, keepdim: true);
            scores.sub_(lse).exp_();
            outputs.Add(matmul(scores, value).MoveToOuterDisposeScope());
            lses.Add(lse.MoveToOuterDisposeScope());
        }
        return outputs.Count == 1 ? new(outputs[0], lses[0]) : Concatenated(outputs, lses);
    }

    static AttentionPartial Concatenated(List<Tensor> outputs, List<Tensor> lses)
    {
        var result = new AttentionPartial(cat(outputs, 2), cat(lses, 2));
        outputs.ForEach(t => t.Dispose());
        lses.ForEach(t => t.Dispose());
        return result;
    }

    /// <summary>The partial over both blocks' keys. Disposes neither input.</summary>
    public static AttentionPartial Merge(AttentionPartial a, AttentionPartial b)
    {
        using var scope = NewDisposeScope();
        var lse = a.Lse.logaddexp(b.Lse);
        var output = a.Output * (a.Lse - lse).exp_() + b.Output * (b.Lse - lse).exp_();
        Kernels.RecordElementwise("merge_partials", output, 4, a.Output, b.Output);
        return new(output.MoveToOuterDisposeScope(), lse.MoveToOuterDisposeScope());
    }

    /// <summary>Merges left to right, disposing the inputs; a fixed order gives the same bits on every rank.</summary>
    public static AttentionPartial MergeInOrder(IReadOnlyList<AttentionPartial> partials)
    {
        var acc = partials[0];
        foreach (var next in partials.Skip(1))
        {
            var merged = Merge(acc, next);
            acc.Dispose();
            next.Dispose();
            acc = merged;
        }
        return acc;
    }

    public void Dispose()
    {
        Output.Dispose();
        Lse.Dispose();
    }
}
