using static TorchSharp.torch;

namespace Sd35.Mesh;

/// <summary>
/// The arithmetic every backend shares, so that backends agree to the bit: reductions add the ranks' parts in rank
/// order (16-bit floats accumulated in fp32 and rounded once), AllReduce splits the flattened tensor into the same
/// pieces, and dimensions and byte counts are read the same way.
/// </summary>
static class CollectiveArithmetic
{
    /// <summary>
    /// The sum of <paramref name="parts"/>, added in the given (rank) order after <paramref name="onDevice"/> moves
    /// each to the device that adds; a fresh tensor of the parts' dtype.
    /// </summary>
    public static Tensor SumInRankOrder(IEnumerable<Tensor> parts, Func<Tensor, Tensor> onDevice)
    {
        Tensor? acc = null;
        var dtype = ScalarType.Float32;
        foreach (var part in parts)
        {
            var p = onDevice(part);
            if (acc is null)
            {
                dtype = p.dtype;
                acc = p.to(dtype is ScalarType.BFloat16 or ScalarType.Float16 ? ScalarType.Float32 : dtype, copy: true);
            }
            else acc.add_(p);
        }
        return acc!.to(dtype);
    }

    /// <summary>Elements of each rank's piece when AllReduce splits <paramref name="numel"/> elements over <paramref name="size"/> ranks.</summary>
    public static long[] PieceSizes(long numel, int size) =>
        Enumerable.Range(0, size).Select(r => numel / size + (r < numel % size ? 1 : 0)).ToArray();

    public static long Bytes(Tensor t) => t.numel() * t.element_size();

    public static long NormalizeDim(Tensor t, long dim)
    {
        long n = t.dim();
        long d = dim < 0 ? dim + n : dim;
        if (d < 0 || d >= n) throw new ArgumentOutOfRangeException(nameof(dim), dim, $"tensor of rank {n}");
        return d;
    }

    public static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";
}
