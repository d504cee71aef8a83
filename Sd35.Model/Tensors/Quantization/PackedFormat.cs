using static TorchSharp.torch;

namespace Sd35.Tensors.Quantization;

/// <summary>
/// The storage formats a weight is held in as raw bytes (uint8 rows) because torch has no dtype for them: ggml's
/// blocks (<see cref="GgmlCodec"/>) and fp8 (<see cref="Fp8Format"/>, a one-value block of one byte). Both are read,
/// cut, padded and gathered as rows of bytes, and expanded to a float dtype where they are used.
/// </summary>
public static class PackedFormat
{
    public static bool Is(GgmlType type) => Fp8Format.Is(type) || GgmlBlocks.IsBlockQuantized(type);

    /// <summary>Throws the one-line refusal for a format this build cannot expand.</summary>
    public static void Require(GgmlType type)
    {
        if (!Fp8Format.Is(type)) GgmlCodec.Require(type);
    }

    /// <summary>The values of <paramref name="bytes"/> (whole blocks in row order) as a new tensor of <paramref name="shape"/> in <paramref name="dtype"/>.</summary>
    public static Tensor Expand(Tensor bytes, GgmlType type, long[] shape, ScalarType dtype) =>
        Fp8Format.Is(type) ? Fp8Format.Expand(bytes, type, shape, dtype) : GgmlCodec.Dequantize(bytes, type, shape, dtype);
}
