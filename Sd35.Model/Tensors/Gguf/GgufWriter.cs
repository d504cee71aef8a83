using System.Text;
using Sd35.Tensors.Quantization;
using static TorchSharp.torch;

namespace Sd35.Tensors.Gguf;

/// <summary>
/// One tensor to write: its name, ggml type and torch-order shape, and a function giving its data when the writer
/// reaches it (so a full-size model is written one tensor at a time). The data is a float tensor for F32/F16/BF16
/// (converted to the type) or the raw blocks in uint8 for a block-quantized type.
/// </summary>
public sealed record GgufTensor(string Name, GgmlType Type, long[] Shape, Func<Tensor> Data);

/// <summary>
/// Writes GGUF v3 (ggml docs/gguf.md): header, metadata, tensor infos (dims innermost first), padding to
/// <c>general.alignment</c> and the tensors, each at an aligned offset. For tests, fixtures and <c>make-model</c>.
/// </summary>
public static class GgufWriter
{
    public static void Write(string path, IReadOnlyList<GgufTensor> tensors, IReadOnlyDictionary<string, object>? metadata = null)
    {
        int alignment = metadata is not null && metadata.TryGetValue("general.alignment", out var a) ? (int)(uint)a : GgufHeader.DefaultAlignment;
        var offsets = new List<long>();
        long offset = 0;
        foreach (var tensor in tensors)
        {
            if (Fp8Format.Is(tensor.Type)) throw new NotSupportedException($"'{tensor.Name}': GGUF has no {tensor.Type} type (fp8 is a safetensors dtype)");
            offsets.Add(offset);
            offset = GgufHeader.AlignUp(offset + BytesOf(tensor), alignment);
        }

        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        writer.Write(GgufHeader.Magic);
        writer.Write(3u);
        writer.Write((ulong)tensors.Count);
        writer.Write((ulong)(metadata?.Count ?? 0));
        foreach (var (key, value) in metadata ?? new Dictionary<string, object>())
        {
            WriteString(writer, key);
            WriteValue(writer, value);
        }
        for (int i = 0; i < tensors.Count; i++)
        {
            var tensor = tensors[i];
            WriteString(writer, tensor.Name);
            writer.Write((uint)tensor.Shape.Length);
            foreach (var dim in tensor.Shape.Reverse()) writer.Write((ulong)dim);
            writer.Write((uint)tensor.Type);
            writer.Write((ulong)offsets[i]);
        }
        writer.Flush();
        long dataStart = GgufHeader.AlignUp(stream.Position, alignment);
        for (int i = 0; i < tensors.Count; i++)
        {
            Pad(stream, dataStart + offsets[i]);
            WriteData(stream, tensors[i]);
        }
        Pad(stream, dataStart + offset);
    }

    static long BytesOf(GgufTensor tensor) => GgmlBlocks.BytesOf(tensor.Type, tensor.Shape.Aggregate(1L, (x, y) => x * y));

    static void Pad(Stream stream, long position)
    {
        if (stream.Position > position) throw new InvalidOperationException($"GGUF writer overran offset {position}");
        stream.Write(new byte[position - stream.Position]);
    }

    static void WriteData(Stream stream, GgufTensor tensor)
    {
        using var data = tensor.Data();
        var dtype = tensor.Type switch
        {
            GgmlType.F32 => ScalarType.Float32,
            GgmlType.F16 => ScalarType.Float16,
            GgmlType.BF16 => ScalarType.BFloat16,
            _ => ScalarType.Byte,
        };
        if (dtype == ScalarType.Byte && data.dtype != ScalarType.Byte)
            throw new ArgumentException($"tensor '{tensor.Name}' of type {tensor.Type} needs its raw blocks as uint8, got {data.dtype}");
        using var stored = data.to(dtype).contiguous().cpu();
        if (stored.numel() * stored.element_size() != BytesOf(tensor))
            throw new ArgumentException($"tensor '{tensor.Name}' holds {stored.numel() * stored.element_size()} bytes, its {tensor.Type} shape needs {BytesOf(tensor)}");
        stream.Write(stored.bytes);
    }

    static void WriteString(BinaryWriter writer, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }

    static void WriteValue(BinaryWriter writer, object value)
    {
        writer.Write((uint)TypeOf(value));
        WritePayload(writer, value);
    }

    static GgufValueType TypeOf(object value) => value switch
    {
        byte => GgufValueType.UInt8,
        sbyte => GgufValueType.Int8,
        ushort => GgufValueType.UInt16,
        short => GgufValueType.Int16,
        uint => GgufValueType.UInt32,
        int => GgufValueType.Int32,
        float => GgufValueType.Float32,
        bool => GgufValueType.Bool,
        string => GgufValueType.String,
        GgufArray => GgufValueType.Array,
        ulong => GgufValueType.UInt64,
        long => GgufValueType.Int64,
        double => GgufValueType.Float64,
        _ => throw new ArgumentException($"GGUF metadata cannot hold a {value.GetType().Name}"),
    };

    static void WritePayload(BinaryWriter writer, object value)
    {
        switch (value)
        {
            case byte v: writer.Write(v); break;
            case sbyte v: writer.Write(v); break;
            case ushort v: writer.Write(v); break;
            case short v: writer.Write(v); break;
            case uint v: writer.Write(v); break;
            case int v: writer.Write(v); break;
            case float v: writer.Write(v); break;
            case bool v: writer.Write((byte)(v ? 1 : 0)); break;
            case string v: WriteString(writer, v); break;
            case ulong v: writer.Write(v); break;
            case long v: writer.Write(v); break;
            case double v: writer.Write(v); break;
            case GgufArray array:
                writer.Write((uint)array.ElementType);
                writer.Write((ulong)array.Values.Count);
                foreach (var item in array.Values)
                {
                    if (TypeOf(item) != array.ElementType) throw new ArgumentException($"a GGUF {array.ElementType} array holds a {item.GetType().Name}");
                    WritePayload(writer, item);
                }
                break;
        }
    }
}
