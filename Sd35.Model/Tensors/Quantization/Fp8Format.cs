using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tensors.Quantization;

/// <summary>
/// The two fp8 formats safetensors names (<c>F8_E4M3</c> = PyTorch's float8_e4m3fn, <c>F8_E5M2</c>), which TorchSharp
/// has no dtype for: a tensor in either is held as its bytes (uint8, the values' shape) and expanded through a
/// 256-entry table of float32 values, indexed by the bytes. Every fp8 value is exactly a float32, float16 and bfloat16
/// value (E4M3: 3 mantissa bits, exponents 2^-9 to 2^8; E5M2: 2 mantissa bits, 2^-16 to 2^15, fp16's top byte — both
/// inside the range and precision of all three), so the expansion to any float dtype loses nothing, and expanding
/// straight to fp16 or bf16 gives what expanding to fp32 and converting gives.
/// </summary>
public static class Fp8Format
{
    static readonly float[] E4M3Values = Enumerable.Range(0, 256).Select(b => E4M3Value((byte)b)).ToArray();
    static readonly float[] E5M2Values = Enumerable.Range(0, 256).Select(b => (float)BitConverter.UInt16BitsToHalf((ushort)(b << 8))).ToArray();

    public static bool Is(GgmlType type) => type is GgmlType.F8_E4M3 or GgmlType.F8_E5M2;

    /// <summary>The fp8 format of a safetensors dtype name (<c>F8_E4M3</c>, <c>F8_E5M2</c>), or null for any other.</summary>
    public static GgmlType? OfDTypeName(string name) => name switch
    {
        nameof(GgmlType.F8_E4M3) => GgmlType.F8_E4M3,
        nameof(GgmlType.F8_E5M2) => GgmlType.F8_E5M2,
        _ => null,
    };

    /// <summary>
    /// The values of fp8 <paramref name="bytes"/> (uint8, any shape holding one byte per value in row order) as a new
    /// tensor of <paramref name="shape"/> in <paramref name="dtype"/>, on the bytes' device.
    /// </summary>
    public static Tensor Expand(Tensor bytes, GgmlType format, long[] shape, ScalarType dtype)
    {
        var table = format switch
        {
            GgmlType.F8_E4M3 => E4M3Values,
            GgmlType.F8_E5M2 => E5M2Values,
            _ => throw new ArgumentException($"{format} is not an fp8 format"),
        };
        long elements = shape.Aggregate(1L, (a, b) => a * b);
        if (bytes.dtype != ScalarType.Byte || bytes.numel() != elements)
            throw new ArgumentException($"{format} bytes {bytes.dtype} [{string.Join(", ", bytes.shape)}] do not hold a tensor of shape [{string.Join(", ", shape)}]");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        // The table in the target dtype (exact, see above), so the gather writes the result directly; int32 indices:
        // half the transient memory of int64 for a weight of tens of millions of values.
        var values = tensor(table, device: bytes.device).to(dtype).index_select(0, bytes.reshape(-1).to(ScalarType.Int32));
        return values.reshape(shape).MoveToOuterDisposeScope();
    }

    /// <summary>E4M3 "fn": bias 7, no infinities; S.1111.111 is NaN, so the largest finite value is 448.</summary>
    static float E4M3Value(byte b)
    {
        int sign = b >> 7, exponent = (b >> 3) & 0xF, mantissa = b & 7;
        if (exponent == 0xF && mantissa == 7) return float.NaN;
        double magnitude = exponent == 0 ? mantissa / 8.0 * Math.Pow(2, -6) : (1 + mantissa / 8.0) * Math.Pow(2, exponent - 7);
        return (float)(sign == 1 ? -magnitude : magnitude);   // -0.0 for 0x80: the negation of 0.0
    }
}
