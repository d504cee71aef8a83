using static TorchSharp.torch;

namespace Sd35.Models.T5;

/// <summary>
/// T5's bucketing of query–key offsets (Mesh TensorFlow's <c>_relative_position_bucket</c>). The encoder is
/// bidirectional: half the buckets are for keys after the query, half for keys at or before it. Within each
/// half, offsets below half the buckets get one bucket each; larger offsets share logarithmically wider
/// buckets up to <c>max_distance</c>, and everything beyond falls into the last bucket.
/// </summary>
static class T5RelativePositionBuckets
{
    /// <param name="relativePosition">key position − query position, int64.</param>
    public static Tensor Compute(Tensor relativePosition, bool bidirectional, int numBuckets, int maxDistance)
    {
        using var scope = NewDisposeScope();
        var buckets = zeros_like(relativePosition);
        var distance = relativePosition;
        if (bidirectional)
        {
            numBuckets /= 2;
            buckets = buckets + relativePosition.gt(0).to(int64) * numBuckets;
            distance = relativePosition.abs();
        }
        else
        {
            distance = -relativePosition.clamp_max(0);
        }
        int maxExact = numBuckets / 2;
        var isSmall = distance.lt(maxExact);
        // The same float32 operations as the reference, so offsets on a bucket boundary (16, 32, 64…) round
        // the same way. log(0) = −inf there is harmless: those offsets take the exact branch.
        var large = (distance.to(float32) / maxExact).log() / Math.Log((double)maxDistance / maxExact) * (numBuckets - maxExact);
        var largeBucket = (large.to(int64) + maxExact).clamp_max(numBuckets - 1);
        return (buckets + where(isSmall, distance, largeBucket)).MoveToOuterDisposeScope();
    }
}
