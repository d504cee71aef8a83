using Sd35.Tensors.Quantization;

namespace Sd35.Tests.Tensors.Quantization;

/// <summary>
/// A plain, one-value-at-a-time reading and writing of ggml's 32-element block formats, written from the format
/// description (ggml-common.h's block structs, ggml-quants.c's reference rows) and independent of the code under test
/// (<see cref="GgmlCodec"/>): byte arrays in, float arrays out, scalar float32 arithmetic as C does it.
/// Block layouts (little-endian): Q8_0 = d:fp16, qs:int8[32]; Q4_0 = d, qs:u8[16]; Q4_1 = d, m, qs:u8[16];
/// Q5_0 = d, qh:u32, qs:u8[16]; Q5_1 = d, m, qh:u32, qs:u8[16]. Nibble byte j holds element j (low) and j + 16 (high);
/// bit j of qh is bit 4 of element j.
/// </summary>
public static class ReferenceBlocks
{
    const int QK = 32;

    public static int BlockBytes(GgmlType type) => type switch
    {
        GgmlType.Q8_0 => 2 + QK,
        GgmlType.Q4_0 => 2 + QK / 2,
        GgmlType.Q4_1 => 4 + QK / 2,
        GgmlType.Q5_0 => 2 + 4 + QK / 2,
        GgmlType.Q5_1 => 4 + 4 + QK / 2,
        _ => throw new NotSupportedException(type.ToString()),
    };

    static float Fp16(byte[] b, int at) => (float)BitConverter.ToHalf(b, at);

    static void PutFp16(byte[] b, int at, float value)
    {
        // (Half)float rounds to nearest even, as GGML_FP32_TO_FP16 does.
        var bits = BitConverter.HalfToUInt16Bits((Half)value);
        b[at] = (byte)bits;
        b[at + 1] = (byte)(bits >> 8);
    }

    public static float[] Dequantize(GgmlType type, byte[] bytes)
    {
        int size = BlockBytes(type);
        int blocks = bytes.Length / size;
        var y = new float[blocks * QK];
        for (int i = 0; i < blocks; i++)
        {
            int o = i * size;
            float d = Fp16(bytes, o);
            switch (type)
            {
                case GgmlType.Q8_0:
                    for (int j = 0; j < QK; j++) y[i * QK + j] = (sbyte)bytes[o + 2 + j] * d;
                    break;
                case GgmlType.Q4_0:
                    for (int j = 0; j < QK / 2; j++)
                    {
                        int x0 = (bytes[o + 2 + j] & 0x0F) - 8, x1 = (bytes[o + 2 + j] >> 4) - 8;
                        y[i * QK + j] = x0 * d;
                        y[i * QK + j + QK / 2] = x1 * d;
                    }
                    break;
                case GgmlType.Q4_1:
                {
                    float m = Fp16(bytes, o + 2);
                    for (int j = 0; j < QK / 2; j++)
                    {
                        int x0 = bytes[o + 4 + j] & 0x0F, x1 = bytes[o + 4 + j] >> 4;
                        y[i * QK + j] = x0 * d + m;
                        y[i * QK + j + QK / 2] = x1 * d + m;
                    }
                    break;
                }
                case GgmlType.Q5_0:
                {
                    uint qh = BitConverter.ToUInt32(bytes, o + 2);
                    for (int j = 0; j < QK / 2; j++)
                    {
                        int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
                        int x0 = ((bytes[o + 6 + j] & 0x0F) | h0) - 16, x1 = ((bytes[o + 6 + j] >> 4) | h1) - 16;
                        y[i * QK + j] = x0 * d;
                        y[i * QK + j + QK / 2] = x1 * d;
                    }
                    break;
                }
                case GgmlType.Q5_1:
                {
                    float m = Fp16(bytes, o + 2);
                    uint qh = BitConverter.ToUInt32(bytes, o + 4);
                    for (int j = 0; j < QK / 2; j++)
                    {
                        int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
                        int x0 = (bytes[o + 8 + j] & 0x0F) | h0, x1 = (bytes[o + 8 + j] >> 4) | h1;
                        y[i * QK + j] = x0 * d + m;
                        y[i * QK + j + QK / 2] = x1 * d + m;
                    }
                    break;
                }
                default: throw new NotSupportedException(type.ToString());
            }
        }
        return y;
    }

    public static byte[] Quantize(GgmlType type, float[] x)
    {
        int size = BlockBytes(type);
        int blocks = x.Length / QK;
        var bytes = new byte[blocks * size];
        for (int i = 0; i < blocks; i++)
        {
            int o = i * size;
            var v = x.AsSpan(i * QK, QK);
            switch (type)
            {
                case GgmlType.Q8_0:
                {
                    float amax = 0;
                    foreach (var e in v) amax = MathF.Max(amax, MathF.Abs(e));
                    float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
                    PutFp16(bytes, o, d);
                    for (int j = 0; j < QK; j++) bytes[o + 2 + j] = (byte)(sbyte)MathF.Round(v[j] * id, MidpointRounding.AwayFromZero);
                    break;
                }
                case GgmlType.Q4_0 or GgmlType.Q5_0:
                {
                    bool five = type == GgmlType.Q5_0;
                    float amax = 0, max = 0;
                    foreach (var e in v)
                        if (amax < MathF.Abs(e)) { amax = MathF.Abs(e); max = e; }
                    float d = max / (five ? -16 : -8), id = d != 0 ? 1.0f / d : 0.0f;
                    PutFp16(bytes, o, d);
                    uint qh = 0;
                    int qs = five ? 6 : 2;
                    for (int j = 0; j < QK / 2; j++)
                    {
                        float x0 = v[j] * id, x1 = v[j + QK / 2] * id;
                        int xi0 = Math.Min(five ? 31 : 15, (int)(sbyte)(x0 + (five ? 16.5f : 8.5f)));
                        int xi1 = Math.Min(five ? 31 : 15, (int)(sbyte)(x1 + (five ? 16.5f : 8.5f)));
                        bytes[o + qs + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                        qh |= (uint)((xi0 & 0x10) >> 4) << j;
                        qh |= (uint)((xi1 & 0x10) >> 4) << (j + QK / 2);
                    }
                    if (five) BitConverter.TryWriteBytes(bytes.AsSpan(o + 2, 4), qh);
                    break;
                }
                case GgmlType.Q4_1 or GgmlType.Q5_1:
                {
                    bool five = type == GgmlType.Q5_1;
                    float min = float.MaxValue, max = -float.MaxValue;
                    foreach (var e in v) { if (e < min) min = e; if (e > max) max = e; }
                    float d = (max - min) / (five ? 31 : 15), id = d != 0 ? 1.0f / d : 0.0f;
                    PutFp16(bytes, o, d);
                    PutFp16(bytes, o + 2, min);
                    uint qh = 0;
                    int qs = five ? 8 : 4;
                    for (int j = 0; j < QK / 2; j++)
                    {
                        float x0 = (v[j] - min) * id, x1 = (v[j + QK / 2] - min) * id;
                        int xi0 = five ? (byte)(x0 + 0.5f) : Math.Min(15, (int)(sbyte)(x0 + 0.5f));
                        int xi1 = five ? (byte)(x1 + 0.5f) : Math.Min(15, (int)(sbyte)(x1 + 0.5f));
                        bytes[o + qs + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                        qh |= (uint)((xi0 & 0x10) >> 4) << j;
                        qh |= (uint)((xi1 & 0x10) >> 4) << (j + QK / 2);
                    }
                    if (five) BitConverter.TryWriteBytes(bytes.AsSpan(o + 4, 4), qh);
                    break;
                }
                default: throw new NotSupportedException(type.ToString());
            }
        }
        return bytes;
    }
}
