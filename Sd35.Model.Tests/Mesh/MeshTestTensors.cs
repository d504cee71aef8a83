using FluentAssertions;
using static TorchSharp.torch;

namespace Sd35.Tests.Mesh;

/// <summary>
/// Deterministic per-device inputs: a rank thread and the test's direct computation build the same tensor from
/// the same seed, so a collective's result can be checked without the ranks sharing memory.
/// </summary>
static class MeshTestTensors
{
    /// <summary>Device ids as plain numbers: the tests seed, index and count with them.</summary>
    public static int[] Numbers(this IEnumerable<Sd35.Mesh.DeviceId> ids) => ids.Select(d => d.Value).ToArray();

    public static Tensor Seeded(int seed, params long[] shape) => Seeded(seed, ScalarType.Float32, shape);

    public static Tensor Seeded(int seed, ScalarType dtype, params long[] shape)
    {
        using var generator = new Generator((ulong)(1000 + seed));
        using var values = randn(shape, generator: generator);
        return values.to(dtype, copy: true);
    }

    /// <summary>Same shape, dtype and every bit.</summary>
    public static void ShouldBeBitEqual(this Tensor actual, Tensor expected, string because)
    {
        actual.shape.Should().Equal(expected.shape, because);
        actual.dtype.Should().Be(expected.dtype, because);
        using var same = actual.eq(expected).all();
        same.item<bool>().Should().BeTrue(because);
    }
}
