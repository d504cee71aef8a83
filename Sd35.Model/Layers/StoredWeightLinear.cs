using Sd35.Tensors.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Layers;

/// <summary>
/// A linear layer whose <c>weight</c> [out, in] is held in a storage format (<see cref="StoredWeightModule"/>) and
/// computes in the dtype it was built with: at each use the weight is expanded to the compute dtype, used, and freed,
/// so only one layer's expanded weight exists at a time. When storage and compute agree the weight is used as it is
/// (the result is the plain linear's, to the bit).
/// </summary>
public abstract class StoredWeightLinear : StoredWeightModule
{
    /// <param name="fullShape">[out, in] of the checkpoint tensor, before padding and cutting</param>
    protected StoredWeightLinear(string name, long[] fullShape, long outFeatures, long inFeatures, ScalarType dtype, Device? device)
        : base(name, fullShape, [outFeatures, inFeatures], dtype, device)
    {
    }

    /// <summary>x·Wᵀ (+ b) with the weight expanded to the compute dtype for this call only.</summary>
    protected Tensor Linear(Tensor input, Tensor? bias = null)
    {
        if (HeldAsComputed) return Kernels.Linear(input, weight, bias);
        using var expanded = ExpandedWeight();
        return Kernels.Linear(input, expanded, bias);
    }

    /// <summary>A cut of the input features (dimension 1) in elements, restated in block bytes.</summary>
    private protected static Parallel.ShardLayout InBlockBytes(Parallel.ShardLayout layout, GgmlType type) =>
        layout with { PaddedSize = layout.PaddedSize == 0 ? 0 : GgmlBlocks.BytesOf(type, layout.PaddedSize) };
}
