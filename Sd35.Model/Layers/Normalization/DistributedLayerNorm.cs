using Sd35.Mesh;
using static TorchSharp.torch;

namespace Sd35.Layers.Normalization;

/// <summary>
/// LayerNorm without affine parameters over a hidden dimension that may be split across the tensor-parallel
/// group. Each rank holds D/tp features; the mean and the variance need all D, so the per-rank partial sums are
/// combined with two small AllReduces (mean first, then the centred sum of squares, which keeps the variance as
/// accurate as a single-device LayerNorm). On a group of one it is <c>F.layer_norm</c>.
/// </summary>
static class DistributedLayerNorm
{
    public static Tensor Apply(Tensor x, IProcessGroup tp, long fullDim, double eps)
    {
        if (tp.Size == 1) return Kernels.LayerNorm(x, eps);
        using var scope = NewDisposeScope();
        var xf = x.to(float32);
        using var localSum = xf.sum([-1], keepdim: true);
        var mean = tp.AllReduce(localSum) / fullDim;
        var centred = xf - mean;
        using var localSquares = centred.square().sum([-1], keepdim: true);
        var variance = tp.AllReduce(localSquares) / fullDim;
        var normed = (centred * (variance + eps).rsqrt()).to(x.dtype);
        Kernels.RecordNorm("distributed_layer_norm", x, normed);
        return normed.MoveToOuterDisposeScope();
    }
}
