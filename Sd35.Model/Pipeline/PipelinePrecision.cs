using Sd35.Numerics;
using Sd35.Tensors.Quantization;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// The dtypes a pipeline runs in, apart from how it stores its weights: the transformer and the text encoders
/// compute in <see cref="Compute"/> (as do the latents and the prompt embeddings), the VAE in <see cref="Vae"/>, and
/// the linears and embedding tables of the transformer and the text encoders hold their weights as
/// <see cref="Storage"/> says (a float dtype, or blocks quantized at load), expanded layer by layer. One dtype for everything, as diffusers'
/// <c>torch_dtype</c>, is <see cref="Uniform"/>: exactly today's computation.
/// </summary>
public sealed record PipelinePrecision(ScalarType Compute, ScalarType Vae, WeightStorage Storage)
{
    /// <summary>Everything in <paramref name="dtype"/>, weights stored as computed.</summary>
    public static PipelinePrecision Uniform(ScalarType dtype) => new(dtype, dtype, WeightStorage.AsComputed);

    /// <summary>
    /// Weights stored in <paramref name="weightDType"/> (and quantized to <paramref name="quantize"/> where rows allow),
    /// computed in <paramref name="computeDType"/>, or where that is null in the dtype this CPU runs faster
    /// (<see cref="ComputeDTypeProbe"/>) — for the VAE too, measured on convolutions. A given compute dtype is used
    /// for the VAE as well.
    /// </summary>
    public static PipelinePrecision Choose(ScalarType weightDType, ScalarType? computeDType = null, GgmlType? quantize = null, ComputeDTypeProbe? probe = null)
    {
        var storage = new WeightStorage { WeightDType = weightDType, Quantize = quantize }.Validate();
        if (computeDType is { } fixedDType) return new PipelinePrecision(ModelDTypes.Require(fixedDType, "compute"), fixedDType, storage);
        // Full-precision weights are asked for full-precision arithmetic: measuring could only trade it away (and make the
        // default image depend on the machine and its load). The choice is for weights already stored reduced.
        if (weightDType == ScalarType.Float32 && quantize is null) return new PipelinePrecision(ScalarType.Float32, ScalarType.Float32, storage);
        probe ??= ComputeDTypeProbe.Cpu;
        return new PipelinePrecision(probe.Gemm, probe.Conv, storage) { Measured = probe };
    }

    /// <summary>The measurement the compute dtypes were chosen by, when they were measured.</summary>
    public ComputeDTypeProbe? Measured { get; init; }

    /// <summary>Weight storage for a loader: null where the weights are held as computed (the plain load path).</summary>
    internal WeightStorage? StorageOrNull => Storage == WeightStorage.AsComputed ? null : Storage;

    public override string ToString() =>
        $"compute {ComputeDTypeProbe.Name(Compute)}, VAE {ComputeDTypeProbe.Name(Vae)}, {Storage}" + (Measured is { } m ? $" (measured: {m})" : "");
}
