using Sd35.Tensors.Quantization;

namespace Sd35.Tests.Tensors.Quantization;

/// <summary>
/// A plain reading and writing of the two fp8 formats, one value at a time, written from the format description
/// (the OCP 8-bit floating point spec, as PyTorch's float8_e4m3fn and float8_e5m2 implement it) and independent of
/// the code under test (<see cref="Fp8Format"/>). Bit 7 is the sign. E4M3 "fn": 4 exponent bits with bias 7, 3
/// mantissa bits, exponent 0 subnormal (m · 2^-9), no infinities, S.1111.111 NaN. E5M2: 5 exponent bits with bias 15,
/// 2 mantissa bits, exponent 0 subnormal (m · 2^-16), exponent 31 infinity (m = 0) or NaN.
/// </summary>
public static class ReferenceFp8
{
    public static double Value(GgmlType format, byte b)
    {
        int sign = b >> 7;
        double magnitude;
        if (format == GgmlType.F8_E4M3)
        {
            int e = (b >> 3) & 15, m = b & 7;
            if (e == 15 && m == 7) return double.NaN;
            magnitude = e == 0 ? m * Math.Pow(2, -9) : (8 + m) * Math.Pow(2, e - 7 - 3);
        }
        else
        {
            int e = (b >> 2) & 31, m = b & 3;
            if (e == 31) return m == 0 ? (sign == 1 ? double.NegativeInfinity : double.PositiveInfinity) : double.NaN;
            magnitude = e == 0 ? m * Math.Pow(2, -16) : (4 + m) * Math.Pow(2, e - 15 - 2);
        }
        return sign == 1 ? -magnitude : magnitude;
    }

    /// <summary>
    /// The E4M3 byte nearest to <paramref name="x"/> (ties to the even mantissa; beyond ±448 the largest finite value):
    /// positive bytes 0x00–0x7E are the finite magnitudes in increasing order, so the nearest is found by bisection.
    /// </summary>
    public static byte EncodeE4M3(float x)
    {
        double magnitude = Math.Abs((double)x);
        int low = 0, high = 0x7E;
        while (high - low > 1)
        {
            int middle = (low + high) / 2;
            if (E4M3Magnitudes[middle] <= magnitude) low = middle; else high = middle;
        }
        double below = magnitude - E4M3Magnitudes[low], above = E4M3Magnitudes[high] - magnitude;
        int nearest = magnitude >= E4M3Magnitudes[0x7E] ? 0x7E
            : below < above ? low : above < below ? high : (low % 2 == 0 ? low : high);
        return (byte)(nearest | (x < 0 ? 0x80 : 0));
    }

    static readonly double[] E4M3Magnitudes = Enumerable.Range(0, 0x7F).Select(b => Value(GgmlType.F8_E4M3, (byte)b)).ToArray();
}
