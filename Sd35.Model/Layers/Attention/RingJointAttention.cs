using Sd35.Mesh;
using Sd35.Profiling;
using static TorchSharp.torch;

namespace Sd35.Layers.Attention;

/// <summary>
/// Joint attention with the image sequence sharded over the sequence-parallel group: the result is
/// exactly full attention over [all image tokens of all ranks ; prompt tokens] (the reference's "rear" joint
/// strategy), without any rank holding all image keys at once.
/// <para>
/// Each rank starts with its own image K/V block and the prompt K/V (replicated over sp). Blocks travel around
/// the ring (sp.Size − 1 RingShifts, each posted before attending to the current block so a real backend can
/// overlap them); each rank attends its local queries to every block as it passes, merging partial results
/// through their log-sum-exp in fp32. The prompt queries attend to every image block and the prompt keys on
/// every rank; their partials are merged in source-rank order, so the replicated prompt output has the same bits
/// on every rank. The image split may be uneven: a rank passes on whatever block it holds.
/// </para>
/// </summary>
static class RingJointAttention
{
    /// <summary>
    /// Default bound on the score elements held at once (128 MB in fp32): a full 4096 × 4096 score matrix over
    /// 38 heads would be 2.5 GB, so query rows are processed in chunks.
    /// </summary>
    public const long DefaultMaxScoreElements = 1L << 25;

    /// <param name="query">this rank's image queries [B, H, Nlocal, D]</param>
    /// <param name="key">this rank's image keys [B, H, Nlocal, D]</param>
    /// <param name="value">this rank's image values [B, H, Nlocal, D]</param>
    /// <param name="promptQuery">prompt queries [B, H, L, D], the same on every sp rank</param>
    /// <param name="promptKey">prompt keys [B, H, L, D], the same on every sp rank</param>
    /// <param name="promptValue">prompt values [B, H, L, D], the same on every sp rank</param>
    /// <param name="sp">the sequence-parallel group; of size one this is plain joint attention (<see cref="Local"/>)</param>
    /// <param name="maxScoreElements">memory bound of the blockwise attention, see <see cref="DefaultMaxScoreElements"/></param>
    /// <returns>this rank's image output [B, H, Nlocal, D] and the full prompt output [B, H, L, D], in the input dtype</returns>
    public static (Tensor Image, Tensor Prompt) Forward(
        Tensor query, Tensor key, Tensor value, Tensor promptQuery, Tensor promptKey, Tensor promptValue, IProcessGroup sp,
        long maxScoreElements = DefaultMaxScoreElements)
    {
        CheckShapes(query, key, value, promptQuery, promptKey, promptValue);
        if (sp.Size == 1) return Local(query, key, value, promptQuery, promptKey, promptValue);

        using var scope = NewDisposeScope();
        double scale = 1.0 / Math.Sqrt(query.shape[3]);
        var q = query.to(ScalarType.Float32) * scale;
        var promptQ = promptQuery.to(ScalarType.Float32) * scale;
        var promptK = promptKey.to(ScalarType.Float32);
        var promptV = promptValue.to(ScalarType.Float32);

        long start = Instrumentation.Timestamp();
        var image = AttentionPartial.Compute(q, promptK, promptV, maxScoreElements);
        Kernels.RecordAttention(query, promptKey, promptValue, image.Output, start: start);
        var promptParts = new AttentionPartial?[sp.Size];
        Tensor blockK = key, blockV = value;
        for (int step = 0; step < sp.Size; step++)
        {
            bool last = step == sp.Size - 1;
            // Posted before the compute on the current block: the block stays untouched until the waits below.
            var nextK = last ? null : sp.StartRingShift(blockK);
            var nextV = last ? null : sp.StartRingShift(blockV);
            int source = (sp.Rank - step + sp.Size) % sp.Size;
            if (blockK.shape[2] > 0)
            {
                start = Instrumentation.Timestamp();
                using var k = blockK.to(ScalarType.Float32);
                using var v = blockV.to(ScalarType.Float32);
                using var block = AttentionPartial.Compute(q, k, v, maxScoreElements);
                Kernels.RecordAttention(query, blockK, blockV, block.Output, start: start);
                var merged = AttentionPartial.Merge(image, block);
                image.Dispose();
                image = merged;
                start = Instrumentation.Timestamp();
                promptParts[source] = AttentionPartial.Compute(promptQ, k, v, maxScoreElements);
                Kernels.RecordAttention(promptQuery, blockK, blockV, promptParts[source]!.Output, start: start);
            }
            if (nextK is null || nextV is null) continue;
            var receivedK = nextK.Wait();
            var receivedV = nextV.Wait();
            if (step > 0)
            {
                blockK.Dispose();
                blockV.Dispose();
            }
            (blockK, blockV) = (receivedK, receivedV);
        }

        start = Instrumentation.Timestamp();
        var promptOwn = AttentionPartial.Compute(promptQ, promptK, promptV, maxScoreElements);
        Kernels.RecordAttention(promptQuery, promptKey, promptValue, promptOwn.Output, start: start);
        var prompt = AttentionPartial.MergeInOrder([.. promptParts.OfType<AttentionPartial>(), promptOwn]);
        var imageOut = image.Output.to(query.dtype).MoveToOuterDisposeScope();
        var promptOut = prompt.Output.to(query.dtype).MoveToOuterDisposeScope();
        return (imageOut, promptOut);
    }

    /// <summary>
    /// Joint attention on one device: scaled-dot-product attention (scale 1/√D) of [image ; prompt] queries over
    /// [image ; prompt] keys, split back into the image and prompt outputs.
    /// </summary>
    public static (Tensor Image, Tensor Prompt) Local(
        Tensor query, Tensor key, Tensor value, Tensor promptQuery, Tensor promptKey, Tensor promptValue)
    {
        using var scope = NewDisposeScope();
        var output = Kernels.Attention(cat([query, promptQuery], 2), cat([key, promptKey], 2), cat([value, promptValue], 2));
        long n = query.shape[2];
        return (output.narrow(2, 0, n).contiguous().MoveToOuterDisposeScope(),
                output.narrow(2, n, promptQuery.shape[2]).contiguous().MoveToOuterDisposeScope());
    }

    static void CheckShapes(Tensor q, Tensor k, Tensor v, Tensor pq, Tensor pk, Tensor pv)
    {
        var all = new[] { ("query", q), ("key", k), ("value", v), ("promptQuery", pq), ("promptKey", pk), ("promptValue", pv) };
        foreach (var (name, t) in all)
            if (t.dim() != 4) throw new ArgumentException($"{name} must be [B, H, N, D], got [{string.Join(", ", t.shape)}]");
        foreach (var (name, t) in all)
            if (t.shape[0] != q.shape[0] || t.shape[1] != q.shape[1] || t.shape[3] != q.shape[3])
                throw new ArgumentException($"{name} [{string.Join(", ", t.shape)}] does not match query [{string.Join(", ", q.shape)}] in batch, heads or head dim");
        if (k.shape[2] != q.shape[2] || v.shape[2] != q.shape[2])
            throw new ArgumentException($"image query, key and value must hold the same tokens: {q.shape[2]}, {k.shape[2]}, {v.shape[2]}");
        if (pk.shape[2] != pq.shape[2] || pv.shape[2] != pq.shape[2])
            throw new ArgumentException($"prompt query, key and value must hold the same tokens: {pq.shape[2]}, {pk.shape[2]}, {pv.shape[2]}");
    }
}
