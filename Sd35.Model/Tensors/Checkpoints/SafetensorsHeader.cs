using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Sd35.Errors;
using TorchSharp;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// One tensor's entry in a checkpoint header; offsets are relative to the data section. <see cref="DType"/> is the
/// dtype a read delivers: a tensor in a packed format (<see cref="Quantized"/>: ggml blocks, or fp8) reads as its raw
/// bytes in uint8 while <see cref="Shape"/> stays the logical (torch) shape.
/// </summary>
public sealed record TensorEntry(string Key, torch.ScalarType DType, long[] Shape, long Begin, long End)
{
    /// <summary>
    /// The packed format of a tensor torch has no dtype for (<see cref="Sd35.Tensors.Quantization.PackedFormat"/>): a
    /// ggml block type (Q8_0, Q4_0, …) or an fp8 format (F8_E4M3, F8_E5M2); null for a dense one.
    /// </summary>
    public Sd35.Tensors.Quantization.GgmlType? Quantized { get; init; }
    /// <summary>How the tensor is stored, for messages: the packed format (named as its file names it), or the dtype.</summary>
    public string StorageName => Quantized?.ToString() ?? SafetensorsDType.NameOf(DType);

    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public string ShapeText => $"[{string.Join(", ", Shape)}]";
}

/// <summary>
/// A validated safetensors header. Nothing in the header is trusted until it is checked against the format as its
/// reference implementation enforces it: the length is at most 100 MB and fits the file, the header is UTF-8 JSON
/// holding one object, no key appears twice, every dtype is known, shape × element size equals the byte span, and
/// the spans tile the data section exactly (in order, no overlap, no hole, nothing after the last one).
/// Every violation is a <see cref="CheckpointException"/> naming the file and, where there is one, the key.
/// </summary>
public sealed class SafetensorsHeader
{
    /// <summary>The format caps the header at 100 MB; a larger value means a corrupt or hostile file.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public string Path { get; }
    public long DataStart { get; }
    public IReadOnlyDictionary<string, TensorEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    SafetensorsHeader(string path, long dataStart, Dictionary<string, TensorEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path;
        DataStart = dataStart;
        Entries = entries;
        Metadata = metadata;
    }

    public static SafetensorsHeader Read(string path, FileStream stream)
    {
        long fileLength = stream.Length;
        if (fileLength < 8) throw Corrupt(path, null, $"file is {fileLength} bytes, shorter than the 8-byte header length (truncated or not safetensors)");
        Span<byte> lengthBytes = stackalloc byte[8];
        stream.Position = 0;
        stream.ReadExactly(lengthBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderBytes)
            throw Corrupt(path, null, $"header length {headerLength} exceeds the format's limit of {MaxHeaderBytes} bytes (corrupt or not safetensors)");
        if ((long)headerLength > fileLength - 8)
            throw Corrupt(path, null, $"header length {headerLength} does not fit a file of {fileLength} bytes (truncated or not safetensors)");

        var json = new byte[headerLength];
        stream.ReadExactly(json);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        try { StrictUtf8.GetCharCount(json); }
        catch (DecoderFallbackException) { throw Corrupt(path, null, "header is not valid UTF-8"); }

        JsonDocument document;
        try { document = JsonDocument.Parse(json); }
        catch (JsonException e) { throw Corrupt(path, null, $"header is not valid JSON: {e.Message}"); }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw Corrupt(path, null, "header is not a JSON object");
            var entries = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (sawMetadata) throw Corrupt(path, null, "__metadata__ appears twice in the header");
                    sawMetadata = true;
                    ReadMetadata(path, property.Value, metadata);
                    continue;
                }
                if (entries.ContainsKey(property.Name)) throw Corrupt(path, property.Name, "appears twice in the header");
                entries.Add(property.Name, ParseEntry(path, property.Name, property.Value, dataLength));
            }
            CheckSpansTileTheData(path, entries.Values, dataLength);
            return new SafetensorsHeader(path, dataStart, entries, metadata);
        }
    }

    static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object) throw Corrupt(path, null, "__metadata__ is not an object");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw Corrupt(path, null, $"__metadata__ value for '{item.Name}' is not a string");
            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    static TensorEntry ParseEntry(string path, string key, JsonElement value, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object) throw Corrupt(path, key, "header entry is not an object");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Corrupt(path, key, "header entry has no dtype string");
        var dtypeName = dtypeElement.GetString()!;
        if (!SafetensorsDType.TryParse(dtypeName, out var dtype, out int elementSize))
            throw Corrupt(path, key, $"unknown dtype '{dtypeName}'");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Corrupt(path, key, "header entry has no shape array");
        var shape = new List<long>();
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long d) || d < 0)
                throw Corrupt(path, key, $"invalid shape dimension {dim.GetRawText()}");
            shape.Add(d);
        }

        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array
            || offsets.GetArrayLength() != 2
            || offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end))
            throw Corrupt(path, key, "data_offsets is not a pair of integers");
        if (begin < 0 || end < begin)
            throw Corrupt(path, key, $"data_offsets [{begin}, {end}] are out of order");
        if (end > dataLength)
            throw Corrupt(path, key, $"data_offsets [{begin}, {end}] lie outside the data section of {dataLength} bytes (truncated file?)");

        var entry = new TensorEntry(key, dtype, shape.ToArray(), begin, end) { Quantized = Sd35.Tensors.Quantization.Fp8Format.OfDTypeName(dtypeName) };
        long expected;
        try { expected = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * elementSize); }
        catch (OverflowException) { throw Corrupt(path, key, $"shape {entry.ShapeText} overflows"); }
        if (expected != end - begin)
            throw Corrupt(path, key, $"shape {entry.ShapeText} × {elementSize} bytes ({dtypeName}) = {expected} bytes, but data_offsets span {end - begin} bytes");
        return entry;
    }

    /// <summary>
    /// The spans, sorted by offset, must start at 0, follow one another without gap or overlap and end exactly at the
    /// end of the file: the reference implementation refuses anything else, and a hole or overlap means corruption.
    /// </summary>
    static void CheckSpansTileTheData(string path, IEnumerable<TensorEntry> entries, long dataLength)
    {
        long expected = 0;
        TensorEntry? previous = null;
        foreach (var entry in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (entry.Begin < expected)
                throw Corrupt(path, entry.Key, $"data_offsets [{entry.Begin}, {entry.End}] overlap tensor '{previous!.Key}' [{previous.Begin}, {previous.End}]");
            if (entry.Begin > expected)
                throw Corrupt(path, entry.Key, $"data_offsets [{entry.Begin}, {entry.End}] leave a hole of {entry.Begin - expected} bytes after offset {expected}");
            expected = entry.End;
            previous = entry;
        }
        if (expected != dataLength)
            throw Corrupt(path, null, $"the data section has {dataLength - expected} bytes after the last tensor (offset {expected} of {dataLength})");
    }

    static CheckpointException Corrupt(string path, string? key, string why) => new(path, key, $"corrupt safetensors file: {why}");
}
