using System.Runtime.InteropServices;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// The two fp8 formats safetensors names (<c>F8_E4M3</c> = PyTorch's float8_e4m3fn, <c>F8_E5M2</c>), expanded to fp16
/// through a 256-entry table. Every fp8 value is exactly an fp16 value (E4M3's smallest subnormal, 2^-9, is an fp16
/// normal; E5M2 is fp16's top byte), so the expansion loses nothing and fp8 files (<c>t5xxl_fp8_e4m3fn.safetensors</c>)
/// load as their fp16 equivalent would.
/// </summary>
static class Fp8Format
{
    public const string E4M3 = "F8_E4M3";
    public const string E5M2 = "F8_E5M2";

    static readonly ushort[] E4M3ToHalf = BuildE4M3();
    static readonly ushort[] E5M2ToHalf = Enumerable.Range(0, 256).Select(b => (ushort)(b << 8)).ToArray();

    public static bool IsFp8(string dtypeName) => dtypeName is E4M3 or E5M2;

    /// <summary>Writes each stored byte's fp16 bits into <paramref name="half"/> (two bytes per element).</summary>
    public static void ExpandToHalf(string format, ReadOnlySpan<byte> stored, Span<byte> half)
    {
        var table = format switch
        {
            E4M3 => E4M3ToHalf,
            E5M2 => E5M2ToHalf,
            _ => throw new ArgumentException($"'{format}' is not an fp8 format"),
        };
        var output = MemoryMarshal.Cast<byte, ushort>(half);
        for (int i = 0; i < stored.Length; i++) output[i] = table[stored[i]];
    }

    /// <summary>E4M3 "fn": bias 7, no infinities; S.1111.111 is NaN, so the largest finite value is 448.</summary>
    static ushort[] BuildE4M3()
    {
        var table = new ushort[256];
        for (int b = 0; b < 256; b++)
        {
            int sign = b >> 7, exponent = (b >> 3) & 0xF, mantissa = b & 7;
            double magnitude = exponent == 0 ? mantissa / 8.0 * Math.Pow(2, -6) : (1 + mantissa / 8.0) * Math.Pow(2, exponent - 7);
            Half value = (exponent == 0xF && mantissa == 7) ? Half.NaN : (Half)(sign == 1 ? -magnitude : magnitude);
            if (sign == 1 && magnitude == 0) value = Half.NegativeZero;
            table[b] = BitConverter.HalfToUInt16Bits(value);
        }
        return table;
    }
}
