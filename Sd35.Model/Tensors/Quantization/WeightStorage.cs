using static TorchSharp.torch;

namespace Sd35.Tensors.Quantization;

/// <summary>
/// How a model holds the weights of its storable layers (<see cref="Checkpoints.IStoredWeight"/>: the linears and
/// embedding tables of the transformer and the text encoders, and convolution kernels, which take the float storage
/// only), apart from the dtype they compute in: as
/// <see cref="WeightDType"/> (null: the compute dtype, nothing to expand), and, with <see cref="Quantize"/>, as ggml
/// blocks of that type wherever a row is a whole number of blocks (other rows keep <see cref="WeightDType"/>). A
/// weight the checkpoint holds packed (GGUF blocks, fp8) stays as it is held. Every other tensor (norms, biases) is
/// held in the compute dtype.
/// </summary>
public sealed record WeightStorage
{
    /// <summary>Weights as they compute: no expansion.</summary>
    public static WeightStorage AsComputed { get; } = new();

    /// <summary>Float32, bfloat16 or float16; null: the compute dtype.</summary>
    public ScalarType? WeightDType { get; init; }

    /// <summary>A block type (Q8_0, Q5_0, Q5_1, Q4_0, Q4_1) to quantize weights to at load; null: none.</summary>
    public GgmlType? Quantize { get; init; }

    /// <summary>
    /// The float storage alone, for components whose weights are not quantized (the VAE's kernels: small, and their rows
    /// are not what the blocks quantize); null where that leaves nothing to do.
    /// </summary>
    public WeightStorage? FloatOnly => WeightDType is null ? null : this with { Quantize = null };

    /// <summary>The float storage of a layer computing in <paramref name="computeDType"/>.</summary>
    public GgmlType FloatStorageFor(ScalarType computeDType) => WeightFormats.Of(WeightDType ?? computeDType);

    /// <summary>Throws the one-line refusal for a storage this build cannot hold.</summary>
    public WeightStorage Validate()
    {
        if (WeightDType is { } dtype) WeightFormats.Of(dtype);
        if (Quantize is { } type) GgmlCodec.Require(type);
        return this;
    }

    public override string ToString() =>
        (WeightDType is { } d ? $"weights {WeightFormats.Of(d)}" : "weights as computed") + (Quantize is { } q ? $", quantized {q}" : "");
}

/// <summary>The float storage formats as ggml names them, and their torch dtypes.</summary>
public static class WeightFormats
{
    public static GgmlType Of(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => GgmlType.F32,
        ScalarType.BFloat16 => GgmlType.BF16,
        ScalarType.Float16 => GgmlType.F16,
        _ => throw new ArgumentException($"weights cannot be stored as {dtype}; use Float32, BFloat16 or Float16"),
    };

    /// <summary>The torch dtype of a float format, or null for a block type.</summary>
    public static ScalarType? FloatDType(GgmlType type) => type switch
    {
        GgmlType.F32 => ScalarType.Float32,
        GgmlType.BF16 => ScalarType.BFloat16,
        GgmlType.F16 => ScalarType.Float16,
        _ => null,
    };
}
