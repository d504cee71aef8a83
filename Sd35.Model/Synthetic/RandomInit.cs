using static TorchSharp.torch;

namespace Sd35.Synthetic;

/// <summary>
/// The project's recipe for random weights (fixtures/reference README, "How the weights were randomized"):
/// tensors of two or more dimensions N(0, 1/fan_in), biases 0.1·N(0, 1), other 1-d tensors (norm scales)
/// 1 + 0.1·N(0, 1). It keeps activations at a realistic scale through deep stacks, so a random model runs
/// with finite values end to end.
/// </summary>
public static class RandomInit
{
    /// <summary>
    /// Values for a tensor named <paramref name="name"/> of <paramref name="shape"/>, drawn and scaled in place in
    /// <paramref name="dtype"/> (float32 unless given) on <paramref name="device"/>: one tensor's memory, no temporaries.
    /// </summary>
    public static Tensor Values(string name, long[] shape, Generator generator, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        var values = randn(shape, dtype, device, generator: generator);
        if (shape.Length >= 2)
            values.div_(Math.Sqrt(shape.Aggregate(1L, (a, b) => a * b) / shape[0]));
        else if (name.EndsWith("bias", StringComparison.Ordinal))
            values.mul_(0.1);
        else
            values.mul_(0.1).add_(1);
        return values;
    }

    /// <summary>A generator for one tensor, from the model seed and the tensor's name: the values do not depend on the order tensors are made in.</summary>
    public static Generator ForTensor(long seed, string name, Device? device = null)
    {
        ulong hash = 14695981039346656037UL; // FNV-1a: stable across runs and platforms, unlike string.GetHashCode
        foreach (char c in name) hash = (hash ^ c) * 1099511628211UL;
        return new Generator(hash ^ (ulong)seed, device ?? CPU);
    }
}
