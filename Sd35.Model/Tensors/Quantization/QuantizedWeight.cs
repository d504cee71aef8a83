using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tensors.Quantization;

/// <summary>
/// A weight held in a packed format (<see cref="PackedFormat"/>: ggml blocks or fp8): the raw bytes ([rows, row length
/// / elements per block · bytes per block], uint8) and the shape of the values they stand for. Made by quantizing a
/// float tensor at load, or from bytes read as they are from a file (GGUF blocks, safetensors fp8); expanded to a
/// float tensor where it is used. Owns its bytes.
/// </summary>
public sealed class QuantizedWeight : IDisposable
{
    public GgmlType Type { get; }
    /// <summary>The shape of the values (e.g. [out, in] of a linear weight).</summary>
    public long[] Shape { get; }
    /// <summary>The blocks, one row of bytes per row of values.</summary>
    public Tensor Blocks { get; }

    QuantizedWeight(GgmlType type, long[] shape, Tensor blocks) => (Type, Shape, Blocks) = (type, shape, blocks);

    public long RowLength => Shape[^1];
    public long Rows => Shape.Length == 0 ? 1 : Shape[..^1].Aggregate(1L, (a, b) => a * b);
    public long BytesPerRow => GgmlBlocks.BytesOf(Type, RowLength);

    /// <summary>
    /// Wraps blocks read as they are (e.g. from a GGUF file): <paramref name="rawBytes"/> (uint8, any shape, in row
    /// order) must be exactly the bytes of a <paramref name="type"/> tensor of <paramref name="shape"/>. Takes ownership
    /// of <paramref name="rawBytes"/> (the result may be a view of it).
    /// </summary>
    public static QuantizedWeight FromBlocks(GgmlType type, long[] shape, Tensor rawBytes)
    {
        PackedFormat.Require(type);
        var layout = GgmlBlocks.Of(type);
        if (shape.Length == 0 || shape.Any(s => s <= 0))
            throw new ArgumentException($"{type} blocks need a shape of positive sizes, not [{string.Join(", ", shape)}]");
        if (shape[^1] % layout.Elements != 0)
            throw new ArgumentException($"row length {shape[^1]} of shape [{string.Join(", ", shape)}] is not a multiple of the {type} block of {layout.Elements}");
        if (rawBytes.dtype != ScalarType.Byte)
            throw new ArgumentException($"{type} blocks must be uint8 bytes, not {rawBytes.dtype}");
        long expected = GgmlBlocks.BytesOf(type, shape.Aggregate(1L, (a, b) => a * b));
        if (rawBytes.numel() != expected)
            throw new ArgumentException($"{type} tensor of shape [{string.Join(", ", shape)}] takes {expected} bytes, but {rawBytes.numel()} were given");
        long rowBytes = GgmlBlocks.BytesOf(type, shape[^1]);
        var rows = rawBytes.reshape(-1, rowBytes);
        // Ownership taken means the caller's reference is ended here: left to the finalizer, it kept every loaded
        // weight's bytes alive after its model was released (a staged run held the Q8_0 T5 through denoising).
        rawBytes.Dispose();
        return new QuantizedWeight(type, [.. shape], rows);
    }

    /// <summary>Quantizes <paramref name="weight"/> (its last dimension a multiple of 32) to <paramref name="type"/>.</summary>
    public static QuantizedWeight Quantize(Tensor weight, GgmlType type)
    {
        var blocks = GgmlCodec.Quantize(weight, type);
        if (weight.device_type != DeviceType.CPU) blocks = blocks.to(weight.device, disposeAfter: true);
        return new QuantizedWeight(type, weight.shape, blocks);
    }

    /// <summary>The values, in <paramref name="dtype"/> (a new tensor the caller owns).</summary>
    public Tensor Dequantize(ScalarType dtype = ScalarType.Float32) => PackedFormat.Expand(Blocks, Type, Shape, dtype);

    /// <summary>A copy with bytes of its own (the caller owns it).</summary>
    public QuantizedWeight Clone() => new(Type, Shape, Blocks.clone());

    /// <summary>
    /// The blocks of rows [<paramref name="start"/>, start + <paramref name="length"/>) of a 2-D weight, or of
    /// columns when <paramref name="dim"/> is 1: a column range must start and end on block boundaries.
    /// </summary>
    public QuantizedWeight Narrow(int dim, long start, long length)
    {
        if (Shape.Length != 2) throw new ArgumentException($"only 2-D {Type} weights can be cut, not [{string.Join(", ", Shape)}]");
        if (dim == 0) return new QuantizedWeight(Type, [length, Shape[1]], Blocks.narrow(0, start, length).clone());
        var layout = GgmlBlocks.Of(Type);
        if (start % layout.Elements != 0 || length % layout.Elements != 0)
            throw new ArgumentException($"columns [{start}, {start + length}) of a {Type} weight do not fall on {layout.Elements}-element block boundaries");
        var bytes = Blocks.narrow(1, start / layout.Elements * layout.Bytes, length / layout.Elements * layout.Bytes).clone();
        return new QuantizedWeight(Type, [Shape[0], length], bytes);
    }

    /// <summary>Bytes held.</summary>
    public long ByteCount => Blocks.numel();

    public void Dispose() => Blocks.Dispose();
}
