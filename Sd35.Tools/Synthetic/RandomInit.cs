using static TorchSharp.torch;

namespace Sd35.Tools.Synthetic;

/// <summary>
/// The project's recipe for random weights (fixtures/reference README, "How the weights were randomized"):
/// tensors of two or more dimensions N(0, 1/fan_in), biases 0.1·N(0, 1), other 1-d tensors (norm scales)
/// 1 + 0.1·N(0, 1). It keeps activations at a realistic scale through deep stacks, so a random model runs
/// with finite values end to end.
/// </summary>
public static class RandomInit
{
    /// <summary>Values for a tensor named <paramref name="name"/> of <paramref name="shape"/>, in float32, on <paramref name="device"/>.</summary>
    public static Tensor Values(string name, long[] shape, Generator generator, Device? device = null)
    {
        var values = randn(shape, float32, device, generator: generator);
        Scale(name, shape, values);
        return values;
    }

    /// <summary>
    /// The same values as <see cref="Values"/>, rounded to <paramref name="dtype"/> on the CPU, drawn in float32 pieces
    /// of at most <paramref name="pieceElements"/> (a multiple of 16, so the generator's stream is the same as one
    /// draw) and copied into the result: memory for the result plus one piece, and the vectorised float32 sampler
    /// (torch's CPU normal sampler is scalar for bfloat16, many times slower). Torch draws 16 at a time and redraws
    /// the last 16 of a size that is not a multiple of 16, so pieces of a multiple of 16 reproduce one draw.
    /// </summary>
    public static Tensor ValuesIn(ScalarType dtype, string name, long[] shape, Generator generator, long pieceElements = 1L << 24)
    {
        if (pieceElements % 16 != 0) throw new ArgumentException("pieces must hold a multiple of 16 elements", nameof(pieceElements));
        var result = empty(shape, dtype);
        using var flat = result.view(-1);
        for (long start = 0, count; start < flat.numel(); start += count)
        {
            // A last piece under 16 elements would take torch's scalar path and change the stream: it joins this one.
            long remaining = flat.numel() - start;
            count = remaining < pieceElements + 16 ? remaining : pieceElements;
            using var piece = randn([count], float32, generator: generator);
            Scale(name, shape, piece);
            using var target = flat.narrow(0, start, count);
            target.copy_(piece);
        }
        return result;
    }

    /// <summary>Scales standard normal draws in place: 1/√fan_in for matrices, 0.1 for biases, 1 + 0.1·x for norm scales.</summary>
    static void Scale(string name, long[] shape, Tensor values)
    {
        if (shape.Length >= 2)
            values.div_(Math.Sqrt(shape.Aggregate(1L, (a, b) => a * b) / shape[0]));
        else if (name.EndsWith("bias", StringComparison.Ordinal))
            values.mul_(0.1);
        else
            values.mul_(0.1).add_(1);
    }

    /// <summary>A generator for one tensor, from the model seed and the tensor's name: the values do not depend on the order tensors are made in.</summary>
    public static Generator ForTensor(long seed, string name, Device? device = null)
    {
        ulong hash = 14695981039346656037UL; // FNV-1a: stable across runs and platforms, unlike string.GetHashCode
        foreach (char c in name) hash = (hash ^ c) * 1099511628211UL;
        return new Generator(hash ^ (ulong)seed, device ?? CPU);
    }
}
