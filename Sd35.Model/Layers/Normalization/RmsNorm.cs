using TorchSharp;
using TorchSharp.Modules;
using Sd35.Profiling;
using static TorchSharp.torch;

namespace Sd35.Layers.Normalization;

/// <summary>
/// RMSNorm over the last dimension with a learned scale (no mean subtraction, no bias), as diffusers' <c>RMSNorm</c>
/// and transformers' <c>T5LayerNorm</c>, which compute the same: the mean square is taken in float32 whatever the
/// input dtype, the normalized value is cast to the weight's dtype before the scale (TorchSharp has no built-in
/// RMSNorm). Used per attention head on the MMDiT's q and k, and as every LayerNorm of T5.
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    readonly double _eps;
    public Parameter weight;

    public RmsNorm(long dim, double eps, ScalarType dtype = ScalarType.Float32, Device? device = null) : base(nameof(RmsNorm))
    {
        _eps = eps;
        weight = new Parameter(WeightInit.Values([dim], dtype, device, () => ones(dim, dtype, device)), requires_grad: false);
        RegisterComponents();
    }

    /// <remarks>
    /// The same operations as diffusers (x·rsqrt(mean(x²) + eps), cast to the weight's dtype, times the weight); the
    /// last product runs in place on the normalized tensor, which this method created.
    /// </remarks>
    public override Tensor forward(Tensor x)
    {
        long start = Instrumentation.Timestamp();
        using var scope = NewDisposeScope();
        var inverseRms = x.to(float32).square().mean([-1], keepdim: true).add_(_eps).rsqrt_();
        var normed = (x * inverseRms).to(weight.dtype);
        normed.mul_(weight);
        Kernels.RecordNorm("rms_norm", x, normed, start);
        return normed.MoveToOuterDisposeScope();
    }
}
