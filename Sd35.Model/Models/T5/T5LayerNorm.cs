using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Models.T5;

/// <summary>
/// T5's LayerNorm, an RMS norm: no mean subtraction and no bias. The mean square is taken in float32 whatever
/// the model dtype, and the normalized value is cast back to the weight's dtype before the scale, exactly as
/// transformers' <c>T5LayerNorm</c> does (TorchSharp has no rms_norm).
/// </summary>
public sealed class T5LayerNorm : nn.Module<Tensor, Tensor>
{
    readonly double _eps;
    public readonly Parameter weight;

    public T5LayerNorm(long size, double eps, ScalarType dtype, Device? device) : base(nameof(T5LayerNorm))
    {
        _eps = eps;
        weight = new Parameter(ones(size, dtype, device), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var variance = hidden.to(float32).square().mean([-1], keepdim: true);
        // bf16 × fp32 promotes to fp32, so the normalization itself is in fp32 in both dtypes.
        var normalized = hidden * (variance + _eps).rsqrt();
        return (weight * normalized.to(weight.dtype)).MoveToOuterDisposeScope();
    }
}
