using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tensors.Quantization;

/// <summary>
/// ggml's 32-element block formats Q8_0, Q5_0, Q5_1, Q4_0 and Q4_1, written with tensor ops over all blocks at once
/// (the dequantization runs for every layer in every forward, so it must be a few vectorised passes, not a loop).
/// The arithmetic follows ggml's reference rows step by step in float32, so the blocks are the bytes
/// <c>quantize_row_*_ref</c> writes and the values those <c>dequantize_row_*</c> reads back:
/// <list type="bullet">
/// <item>Q8_0: d = amax/127, q = round-half-away(x/d) as int8; x = q·d.</item>
/// <item>Q4_0 / Q5_0: d = (the value of largest magnitude, first on ties)/−8 (−16), q = min(15 (31), trunc(x/d + 8.5 (16.5)));
/// x = (q − 8 (16))·d.</item>
/// <item>Q4_1 / Q5_1: d = (max − min)/15 (31), m = min, q = trunc((x − m)/d + 0.5) (capped at 15 for Q4_1); x = q·d + m.</item>
/// </list>
/// Where 1/d is taken, it is the reciprocal of the float32 d, and d is then stored as fp16 (round to nearest even).
/// A block's bytes: d (fp16, little-endian), for the _1 types m (fp16), for the 5-bit types 32 high bits (one
/// little-endian uint32, bit j for element j), then the low bits: int8 values (Q8_0) or 16 bytes whose low nibble is
/// element j and high nibble element j + 16.
/// The K-quants (256-element super-blocks) are refused: SD3.5's rows of 2432 are not multiples of 256.
/// </summary>
public static class GgmlCodec
{
    const int Block = 32;
    const int Half = Block / 2;

    /// <summary>The block types this codec reads and writes.</summary>
    public static IReadOnlyList<GgmlType> Supported { get; } = [GgmlType.Q8_0, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_0, GgmlType.Q4_1];

    public static bool IsSupported(GgmlType type) => Supported.Contains(type);

    /// <summary>Throws the one-line refusal for a block type this codec cannot handle.</summary>
    public static void Require(GgmlType type)
    {
        if (IsSupported(type)) return;
        string why = GgmlBlocks.TryGet(type, out var layout) && layout.Elements > Block
            ? $"a K-quant ({layout.Elements}-element super-blocks, which SD3.5's 2432-wide rows do not fill) and not supported"
            : GgmlBlocks.TryGet(type, out _) ? "not a block-quantized type" : "an unknown ggml type";
        throw new NotSupportedException($"ggml type {type} is {why}; supported: {string.Join(", ", Supported)}");
    }

    /// <summary>
    /// Quantizes the rows of <paramref name="weight"/> (any float dtype; the last dimension a multiple of 32) into
    /// uint8 blocks of shape [rows, row length / 32 · bytes per block].
    /// </summary>
    public static Tensor Quantize(Tensor weight, GgmlType type)
    {
        Require(type);
        long rowLength = weight.shape[^1];
        if (weight.dim() == 0 || rowLength % Block != 0)
            throw new ArgumentException($"cannot quantize to {type}: row length {(weight.dim() == 0 ? 0 : rowLength)} is not a multiple of {Block}");
        long rows = weight.numel() / rowLength;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var blocks = weight.detach().reshape(-1, Block);
        long count = blocks.shape[0];
        var bytes = empty([count, GgmlBlocks.Of(type).Bytes], ScalarType.Byte, CPU);
        // Block by block is the format's rule, so quantizing a piece at a time gives the same bytes; it bounds the
        // temporaries (float32 and float64 copies, ~32 bytes a value together) to a few hundred MB: quantizing T5's
        // 32128 × 4096 token table in one piece had added 4.2 GB to the loading peak.
        for (long start = 0; start < count; start += QuantizeChunkBlocks)
        {
            using var chunkScope = NewDisposeScope();
            long n = Math.Min(QuantizeChunkBlocks, count - start);
            var piece = blocks.narrow(0, start, n).to(ScalarType.Float32, CPU);
            var quantized = type switch
            {
                GgmlType.Q8_0 => QuantizeQ8_0(piece),
                GgmlType.Q4_0 => QuantizeSymmetric(piece, 4),
                GgmlType.Q5_0 => QuantizeSymmetric(piece, 5),
                GgmlType.Q4_1 => QuantizeWithMinimum(piece, 4),
                GgmlType.Q5_1 => QuantizeWithMinimum(piece, 5),
                _ => throw new NotSupportedException(type.ToString()),
            };
            bytes.narrow(0, start, n).copy_(quantized);
        }
        return bytes.reshape(rows, rowLength / Block * GgmlBlocks.Of(type).Bytes).MoveToOuterDisposeScope();
    }

    /// <summary>Blocks quantized at a time: 4 Mi values.</summary>
    const long QuantizeChunkBlocks = 1L << 17;

    /// <summary>
    /// The values of uint8 blocks (any shape whose bytes are whole blocks in row order) as a tensor of
    /// <paramref name="shape"/> in <paramref name="dtype"/> (computed in float32, then converted once).
    /// </summary>
    public static Tensor Dequantize(Tensor blocks, GgmlType type, long[] shape, ScalarType dtype = ScalarType.Float32)
    {
        Require(type);
        var layout = GgmlBlocks.Of(type);
        long elements = shape.Aggregate(1L, (a, b) => a * b);
        if (shape.Length == 0 || shape[^1] % Block != 0 || blocks.numel() != elements / Block * layout.Bytes || blocks.dtype != ScalarType.Byte)
            throw new ArgumentException($"{type} blocks {blocks.dtype} [{string.Join(", ", blocks.shape)}] do not hold a tensor of shape [{string.Join(", ", shape)}]");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var rows = blocks.reshape(-1, layout.Bytes);
        var values = type switch
        {
            GgmlType.Q8_0 => Int8Values(rows, 2).mul_(Fp16At(rows, 0)),
            GgmlType.Q4_0 => Nibbles(rows, 2).sub_(8).mul_(Fp16At(rows, 0)),
            GgmlType.Q5_0 => Nibbles(rows, 6).add_(HighBits(rows, 2)).sub_(16).mul_(Fp16At(rows, 0)),
            GgmlType.Q4_1 => Nibbles(rows, 4).mul_(Fp16At(rows, 0)).add_(Fp16At(rows, 2)),
            GgmlType.Q5_1 => Nibbles(rows, 8).add_(HighBits(rows, 4)).mul_(Fp16At(rows, 0)).add_(Fp16At(rows, 2)),
            _ => throw new NotSupportedException(type.ToString()),
        };
        var result = values.reshape(shape).to(dtype, blocks.device);
        return result.MoveToOuterDisposeScope();
    }

    // ---- quantize ----

    static Tensor QuantizeQ8_0(Tensor x)
    {
        var d = x.abs().amax([1], keepdim: true).div(127f);
        var q = RoundHalfAwayFromZero(x.mul(Reciprocal(d))).to(ScalarType.Int8);
        return cat([Fp16Bytes(d), ByteView.As(q, ScalarType.Byte, q.shape)], 1);
    }

    /// <summary>Q4_0 and Q5_0: a scale from the block's value of largest magnitude, mapped to the lowest level.</summary>
    static Tensor QuantizeSymmetric(Tensor x, int bits)
    {
        int levels = 1 << bits;
        // argmax returns the first of equal maxima, as the reference's strict "amax < |v|" keeps the first.
        var extreme = x.gather(1, x.abs().argmax(1, keepdim: true));
        var d = extreme.div((float)(-levels / 2));
        var q = x.mul(Reciprocal(d)).add_(levels / 2 + 0.5f).trunc_().clamp_max_(levels - 1);
        return bits == 4 ? cat([Fp16Bytes(d), PackNibbles(q)], 1) : cat([Fp16Bytes(d), PackHighBits(q), PackNibbles(q)], 1);
    }

    /// <summary>Q4_1 and Q5_1: a scale over the block's range and its minimum as offset.</summary>
    static Tensor QuantizeWithMinimum(Tensor x, int bits)
    {
        var min = x.amin([1], keepdim: true);
        var d = x.amax([1], keepdim: true).sub(min).div((float)((1 << bits) - 1));
        var q = x.sub(min).mul_(Reciprocal(d)).add_(0.5f).trunc_();
        // The reference caps Q4_1 at 15 but not Q5_1 (whose values stay below 32 by construction).
        if (bits == 4) q = q.clamp_max_(15);
        return bits == 4
            ? cat([Fp16Bytes(d), Fp16Bytes(min), PackNibbles(q)], 1)
            : cat([Fp16Bytes(d), Fp16Bytes(min), PackHighBits(q), PackNibbles(q)], 1);
    }

    /// <summary>1/d in float32 where d ≠ 0, else 0 (an all-zero block).</summary>
    static Tensor Reciprocal(Tensor d) => where(d.eq(0), zeros_like(d), ones_like(d).div(d));

    /// <summary>C's <c>roundf</c> (halves away from zero); torch's round goes to even. Exact in float64.</summary>
    static Tensor RoundHalfAwayFromZero(Tensor x)
    {
        var wide = x.to(ScalarType.Float64);
        return wide.abs().add_(0.5).floor_().mul_(wide.sign());
    }

    static Tensor Fp16Bytes(Tensor column)
    {
        var half = column.to(ScalarType.Float16).contiguous();
        return ByteView.As(half, ScalarType.Byte, half.shape[0], 2);
    }

    /// <summary>16 bytes: element j in the low nibble, element j + 16 in the high one (low 4 bits of each value).</summary>
    static Tensor PackNibbles(Tensor q)
    {
        var low = q.narrow(1, 0, Half).remainder(16);
        var high = q.narrow(1, Half, Half).remainder(16);
        return low.add(high.mul(16)).to(ScalarType.Byte);
    }

    /// <summary>Bit 4 of each of the 32 values as one little-endian uint32 (4 bytes, bit j of the word for element j).</summary>
    static Tensor PackHighBits(Tensor q)
    {
        var bit = q.div(16, RoundingMode.floor).remainder(2).reshape(-1, 4, 8);
        return bit.mul(BitWeights(q.device)).sum([2]).to(ScalarType.Byte);
    }

    static Tensor BitWeights(Device device) => tensor(new float[] { 1, 2, 4, 8, 16, 32, 64, 128 }, device: device);

    // ---- dequantize ----

    static Tensor Fp16At(Tensor rows, long offset) =>
        ByteView.As(rows.narrow(1, offset, 2), ScalarType.Float16, rows.shape[0], 1).to(ScalarType.Float32);

    static Tensor Int8Values(Tensor rows, long offset) =>
        ByteView.As(rows.narrow(1, offset, Block), ScalarType.Int8, rows.shape[0], Block).to(ScalarType.Float32);

    /// <summary>The low 4 bits of the 32 values: [low nibbles of the 16 bytes, high nibbles of the 16 bytes].</summary>
    static Tensor Nibbles(Tensor rows, long offset)
    {
        var packed = rows.narrow(1, offset, Half).to(ScalarType.Float32);
        var high = packed.div(16, RoundingMode.floor);
        var low = packed.sub(high.mul(16));
        return cat([low, high], 1);
    }

    /// <summary>16 × bit 4 of each value, from the little-endian uint32 at <paramref name="offset"/>.</summary>
    static Tensor HighBits(Tensor rows, long offset)
    {
        var word = rows.narrow(1, offset, 4).to(ScalarType.Float32).unsqueeze(2);
        var bits = word.div(BitWeights(rows.device), RoundingMode.floor).remainder(2);
        return bits.reshape(rows.shape[0], Block).mul_(16);
    }
}
