using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;

namespace Sd35.Tensors.Checkpoints;

/// <summary>One tensor's entry in a safetensors header; offsets are relative to the data section.</summary>
public sealed record TensorEntry(string Key, torch.ScalarType DType, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public string ShapeText => $"[{string.Join(", ", Shape)}]";
}

/// <summary>
/// A validated safetensors header. Nothing in the header is trusted until it is checked: the length fits
/// the file, the JSON parses, every dtype is known, shape × element size equals the byte span, and the
/// spans lie inside the data section without overlapping.
/// </summary>
public sealed class SafetensorsHeader
{
    /// <summary>The real format caps the header at 100 MB; a larger value means a corrupt or hostile file.</summary>
    const long MaxHeaderBytes = 100_000_000;

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
        if (fileLength < 8) throw Corrupt(path, $"file is {fileLength} bytes, shorter than the 8-byte header length");
        Span<byte> lengthBytes = stackalloc byte[8];
        stream.Position = 0;
        stream.ReadExactly(lengthBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderBytes || (long)headerLength > fileLength - 8)
            throw Corrupt(path, $"header length {headerLength} does not fit a file of {fileLength} bytes (truncated or not safetensors)");

        var json = new byte[headerLength];
        stream.ReadExactly(json);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        JsonDocument document;
        try { document = JsonDocument.Parse(json); }
        catch (JsonException e) { throw Corrupt(path, $"header is not valid JSON: {e.Message}"); }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw Corrupt(path, "header is not a JSON object");
            var entries = new Dictionary<string, TensorEntry>();
            var metadata = new Dictionary<string, string>();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    ReadMetadata(path, property.Value, metadata);
                    continue;
                }
                entries.Add(property.Name, ParseEntry(path, property.Name, property.Value, dataLength));
            }
            CheckNoOverlap(path, entries.Values);
            return new SafetensorsHeader(path, dataStart, entries, metadata);
        }
    }

    static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object) throw Corrupt(path, "__metadata__ is not an object");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw Corrupt(path, $"__metadata__ value for '{item.Name}' is not a string");
            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    static TensorEntry ParseEntry(string path, string key, JsonElement value, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object) throw Corrupt(path, $"entry '{key}' is not an object");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Corrupt(path, $"entry '{key}' has no dtype");
        var dtypeName = dtypeElement.GetString()!;
        if (!SafetensorsDType.TryParse(dtypeName, out var dtype, out int elementSize))
            throw Corrupt(path, $"entry '{key}' has unknown dtype '{dtypeName}'");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Corrupt(path, $"entry '{key}' has no shape");
        var shape = new List<long>();
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long d) || d < 0)
                throw Corrupt(path, $"entry '{key}' has an invalid shape dimension {dim}");
            shape.Add(d);
        }

        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array
            || offsets.GetArrayLength() != 2
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end))
            throw Corrupt(path, $"entry '{key}' has no valid data_offsets");
        if (begin < 0 || end < begin || end > dataLength)
            throw Corrupt(path, $"entry '{key}' spans bytes [{begin}, {end}) outside the data section of {dataLength} bytes (truncated file?)");

        var entry = new TensorEntry(key, dtype, shape.ToArray(), begin, end);
        long expected;
        try { expected = checked(entry.ElementCount * elementSize); }
        catch (OverflowException) { throw Corrupt(path, $"entry '{key}' shape {entry.ShapeText} overflows"); }
        if (expected != end - begin)
            throw Corrupt(path, $"entry '{key}' shape {entry.ShapeText} × {elementSize} bytes = {expected} but its span is {end - begin} bytes");
        return entry;
    }

    static void CheckNoOverlap(string path, IEnumerable<TensorEntry> entries)
    {
        TensorEntry? previous = null;
        foreach (var entry in entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin))
        {
            if (previous is not null && entry.Begin < previous.End)
                throw Corrupt(path, $"entries '{previous.Key}' and '{entry.Key}' overlap");
            previous = entry;
        }
    }

    static InvalidDataException Corrupt(string path, string why) =>
        new($"Corrupt safetensors file '{path}': {why}.");
}
