using static TorchSharp.torch;

namespace Sd35.Layers.Parallel;

/// <summary>
/// How a full checkpoint tensor is cut into one rank's piece along one dimension: optional zero padding
/// to a larger size (38 heads padded to 40 for tp = 4), then either a plain contiguous shard, or, for a
/// tensor that is the concatenation of several equal chunks (AdaLN's six modulation vectors), this rank's
/// slice of every chunk, kept in chunk order. The second form lets each rank split its local output into
/// chunks and find exactly its slice of each one, with no communication.
/// </summary>
sealed record ShardLayout(long Dim, int Rank, int Size, long PaddedSize = 0, int Chunks = 1)
{
    public long LocalSize(long fullSize) => (PaddedSize > 0 ? PaddedSize : fullSize) / Size;

    public Tensor Apply(Tensor full)
    {
        long size = full.shape[Dim];
        long padded = PaddedSize > 0 ? PaddedSize : size;
        if (padded < size) throw new ArgumentException($"cannot pad dimension {Dim} of size {size} down to {padded}");
        if (padded % (Chunks * Size) != 0)
            throw new ArgumentException($"dimension {Dim} of size {padded} does not split into {Chunks} chunks × {Size} ranks");
        using var scope = NewDisposeScope();
        var source = full;
        if (padded > size)
        {
            var padShape = full.shape.ToArray();
            padShape[Dim] = padded - size;
            source = cat([full, zeros(padShape, full.dtype)], Dim);
        }
        long chunk = padded / Chunks;
        long piece = chunk / Size;
        var parts = Enumerable.Range(0, Chunks).Select(c => source.narrow(Dim, c * chunk + Rank * piece, piece)).ToArray();
        var result = Chunks == 1 ? parts[0].clone() : cat(parts, Dim);
        return result.MoveToOuterDisposeScope();
    }
}
