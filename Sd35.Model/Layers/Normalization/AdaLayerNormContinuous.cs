using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Layers.Normalization;

/// <summary>
/// diffusers' <c>AdaLayerNormContinuous</c> (LayerNorm without affine, eps 1e-6): norm(x)·(1 + scale) + shift with
/// (scale, shift) — in that order — from a linear of silu(conditioning). Used for the last block's prompt stream
/// (tp-sharded, like <see cref="AdaLayerNormZero"/>) and for the model's output norm (on one full replica).
/// </summary>
sealed class AdaLayerNormContinuous : nn.Module
{
    readonly IProcessGroup _tp;
    readonly long _dim;
    public ColumnParallelLinear linear;

    public AdaLayerNormContinuous(long dim, long conditioningDim, IProcessGroup tp, ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base(nameof(AdaLayerNormContinuous))
    {
        _tp = tp;
        _dim = dim;
        linear = new ColumnParallelLinear(conditioningDim, 2 * dim, tp, chunks: 2, dtype: dtype, device: device);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor conditioning)
    {
        using var embedding = Embed(conditioning);
        return Apply(x, embedding);
    }

    /// <summary>(scale, shift) = linear(silu(conditioning)): latent-independent, so computable for a whole schedule at once.</summary>
    public Tensor Embed(Tensor conditioning)
    {
        using var activated = nn.functional.silu(conditioning).to(linear.ComputeDType);
        return linear.forward(activated);
    }

    /// <summary>As <see cref="Forward"/>, from the vectors made by <see cref="Embed"/>.</summary>
    public Tensor Apply(Tensor x, Tensor embedding)
    {
        using var scope = NewDisposeScope();
        var chunks = embedding.chunk(2, 1);
        var normed = DistributedLayerNorm.Apply(x, _tp, _dim, 1e-6);
        return AdaLayerNormZero.Modulate(normed, shift: chunks[1], scale: chunks[0]).MoveToOuterDisposeScope();
    }
}
