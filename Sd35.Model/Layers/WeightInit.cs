using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Layers;

/// <summary>
/// Whether the model being built needs initial values. A model read from a checkpoint does not: every parameter and
/// buffer is overwritten by the loader (strictly: a key the checkpoint lacks is an error), so initialising them would
/// only cost time. For SD3.5 Large the position table alone is 90 M float64 sines and cosines (seconds on this CPU), and
/// TorchSharp's <c>nn.Linear</c> draws Kaiming-uniform values for each weight. Inside <see cref="ForLoading"/> the
/// layers allocate their tensors uninitialised (<c>empty</c>: pages are not even touched until the checkpoint's bytes
/// are read into them); outside it (benchmarks and tests that build a model and fill it themselves) they initialise as
/// before. The scope follows the building thread (<see cref="AsyncLocal{T}"/>), so ranks built in parallel do not see
/// each other's.
/// </summary>
public static class WeightInit
{
    static readonly AsyncLocal<int> LoadingDepth = new();

    /// <summary>True while building a model whose every tensor a checkpoint will overwrite.</summary>
    public static bool Skipped => LoadingDepth.Value > 0;

    /// <summary>Builds models inside the returned scope without initialising their weights.</summary>
    public static IDisposable ForLoading()
    {
        LoadingDepth.Value++;
        return new Scope();
    }

    sealed class Scope : IDisposable
    {
        bool _disposed;

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            LoadingDepth.Value--;
        }
    }

    /// <summary><paramref name="initial"/>'s values, or an uninitialised tensor of <paramref name="shape"/> when the checkpoint will supply them.</summary>
    public static Tensor Values(long[] shape, ScalarType dtype, Device? device, Func<Tensor> initial) =>
        Skipped ? empty(shape, dtype, device) : initial();

    /// <summary>
    /// TorchSharp's <c>nn.Linear</c> (its type and parameter names), without its Kaiming initialisation when loading:
    /// it is built on the meta device, where drawing values costs nothing, and given uninitialised parameters on
    /// <paramref name="device"/>.
    /// </summary>
    public static Linear Linear(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype, Device? device)
    {
        if (!Skipped) return nn.Linear(inFeatures, outFeatures, hasBias, device, dtype);
        var linear = nn.Linear(inFeatures, outFeatures, hasBias, Profiling.ShapeOnly.Device, dtype);
        linear.weight = Uninitialised(linear.weight, device);
        if (hasBias) linear.bias = Uninitialised(linear.bias!, device);
        return linear;
    }

    /// <summary>TorchSharp's <c>nn.LayerNorm</c> (elementwise affine), without its ones and zeros when loading.</summary>
    public static LayerNorm LayerNorm(long features, double eps, ScalarType dtype, Device? device)
    {
        if (!Skipped) return nn.LayerNorm(features, eps, device: device, dtype: dtype);
        var norm = nn.LayerNorm(features, eps, device: Profiling.ShapeOnly.Device, dtype: dtype);
        norm.weight = Uninitialised(norm.weight!, device);
        norm.bias = Uninitialised(norm.bias!, device);
        return norm;
    }

    static Parameter Uninitialised(Tensor shapeOf, Device? device) =>
        new(empty(shapeOf.shape, shapeOf.dtype, device), requires_grad: false);
}
