using System.Text;
using Sd35.Errors;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using TorchSharp;

namespace Sd35.Tensors.Gguf;

/// <summary>
/// A validated GGUF header (v2/v3, little-endian; ggml docs/gguf.md): magic, version, tensor count, metadata
/// key-value pairs of every value type (arrays included), tensor infos, and the data section that starts at the next
/// multiple of <c>general.alignment</c> (default 32). Nothing is trusted until checked: counts and lengths against
/// the bytes left, dimension counts (at most 4), each tensor's ggml type (a known block layout), row length (a whole
/// number of blocks), offset (aligned, inside the file) and that no two tensors overlap. Dimensions are stored in
/// ggml order (innermost first); entries carry the torch order. Each violation is one <see cref="CheckpointException"/>
/// naming the file and the key or tensor.
/// </summary>
public sealed class GgufHeader
{
    public const uint Magic = 0x46554747;   // "GGUF" read as a little-endian uint32
    public const int DefaultAlignment = 32;
    const int MaxDims = 4;

    public string Path { get; }
    public uint Version { get; }
    public long DataStart { get; }
    public int Alignment { get; }
    public IReadOnlyDictionary<string, object> Metadata { get; }
    public IReadOnlyDictionary<string, TensorEntry> Entries { get; }
    /// <summary>Tensor names in file order (the order the writer put them).</summary>
    public IReadOnlyList<string> Order { get; }

    GgufHeader(string path, uint version, long dataStart, int alignment, Dictionary<string, object> metadata, Dictionary<string, TensorEntry> entries, List<string> order)
    {
        (Path, Version, DataStart, Alignment, Metadata, Entries, Order) = (path, version, dataStart, alignment, metadata, entries, order);
    }

    /// <summary>The architecture the file declares (<c>general.architecture</c>), or null.</summary>
    public string? Architecture => Metadata.TryGetValue("general.architecture", out var value) ? value as string : null;

    public static GgufHeader Read(string path, Stream stream)
    {
        var reader = new Reader(path, stream);
        long fileLength = stream.Length;
        if (fileLength < 24) throw Corrupt(path, null, $"file is {fileLength} bytes, shorter than a GGUF header (truncated or not GGUF)");
        uint magic = reader.UInt32("magic");
        if (magic != Magic) throw Corrupt(path, null, $"wrong magic 0x{magic:X8} (expected 'GGUF'): not a GGUF file");
        uint version = reader.UInt32("version");
        if (version is not (2 or 3)) throw Corrupt(path, null, $"GGUF version {version} is not supported (versions 2 and 3 are)");
        ulong tensorCount = reader.UInt64("tensor count");
        ulong kvCount = reader.UInt64("metadata count");
        // Every key-value takes at least 12 bytes and every tensor info at least 24: larger counts cannot fit the file.
        if (kvCount > (ulong)(fileLength / 12)) throw Corrupt(path, null, $"metadata count {kvCount} cannot fit a file of {fileLength} bytes");
        if (tensorCount > (ulong)(fileLength / 24)) throw Corrupt(path, null, $"tensor count {tensorCount} cannot fit a file of {fileLength} bytes");

        var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            var key = reader.String("metadata key");
            reader.Key = key;
            var value = reader.Value(key, (GgufValueType)reader.UInt32(key));
            reader.Key = null;
            if (!metadata.TryAdd(key, value)) throw Corrupt(path, key, "metadata key appears twice");
        }
        int alignment = ReadAlignment(path, metadata);

        var infos = new List<(string Name, long[] Ne, GgmlType Type, ulong Offset)>();
        for (ulong i = 0; i < tensorCount; i++)
        {
            var name = reader.String("tensor name");
            reader.Key = name;
            uint dims = reader.UInt32(name);
            if (dims is 0 or > MaxDims) throw Corrupt(path, name, $"has {dims} dimensions (1 to {MaxDims} allowed)");
            var ne = new long[dims];
            for (int d = 0; d < dims; d++)
            {
                ulong n = reader.UInt64(name);
                if (n == 0 || n > long.MaxValue / 2) throw Corrupt(path, name, $"dimension {d} is {n}");
                ne[d] = (long)n;
            }
            uint typeNumber = reader.UInt32(name);
            // The fp8 formats share the enum as storage formats of this project's, not as ggml types a GGUF file may hold.
            if (!Enum.IsDefined(typeof(GgmlType), (int)typeNumber) || !GgmlBlocks.TryGet((GgmlType)typeNumber, out _) || Fp8Format.Is((GgmlType)typeNumber))
                throw Corrupt(path, name, $"unknown or unsupported ggml type {typeNumber}");
            infos.Add((name, ne, (GgmlType)typeNumber, reader.UInt64(name)));
            reader.Key = null;
        }

        long dataStart = AlignUp(stream.Position, alignment);
        long dataLength = fileLength - dataStart;
        if (dataLength < 0) throw Corrupt(path, null, $"the data section would start at {dataStart}, past the end of the {fileLength}-byte file (truncated)");
        var entries = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var (name, ne, type, offset) in infos)
        {
            if (entries.ContainsKey(name)) throw Corrupt(path, name, "tensor appears twice");
            entries.Add(name, Entry(path, name, ne, type, offset, alignment, dataLength));
            order.Add(name);
        }
        CheckNoOverlap(path, entries.Values);
        return new GgufHeader(path, version, dataStart, alignment, metadata, entries, order);
    }

    static int ReadAlignment(string path, Dictionary<string, object> metadata)
    {
        if (!metadata.TryGetValue("general.alignment", out var value)) return DefaultAlignment;
        if (value is not uint alignment) throw Corrupt(path, "general.alignment", $"must be a uint32, got {value.GetType().Name}");
        if (alignment == 0 || alignment > 1 << 20 || (alignment & (alignment - 1)) != 0)
            throw Corrupt(path, "general.alignment", $"{alignment} is not a power of two up to 1 MiB");
        return (int)alignment;
    }

    static TensorEntry Entry(string path, string name, long[] ne, GgmlType type, ulong offset, int alignment, long dataLength)
    {
        var layout = GgmlBlocks.Of(type);
        if (ne[0] % layout.Elements != 0)
            throw Corrupt(path, name, $"row length {ne[0]} is not a multiple of the {type} block of {layout.Elements}");
        long bytes;
        try { bytes = checked(ne.Aggregate(1L, (a, b) => checked(a * b)) / layout.Elements * layout.Bytes); }
        catch (OverflowException) { throw Corrupt(path, name, $"shape [{string.Join(", ", ne)}] overflows"); }
        if (offset % (ulong)alignment != 0) throw Corrupt(path, name, $"data offset {offset} is not a multiple of the alignment {alignment}");
        if (offset > (ulong)dataLength || bytes > dataLength - (long)offset)
            throw Corrupt(path, name, $"data [{offset}, {offset + (ulong)bytes}) lies outside the data section of {dataLength} bytes (truncated file?)");
        var shape = ne.Reverse().ToArray();   // ggml's innermost-first order → torch's outermost-first
        var dtype = type switch
        {
            GgmlType.F32 => torch.ScalarType.Float32,
            GgmlType.F16 => torch.ScalarType.Float16,
            GgmlType.BF16 => torch.ScalarType.BFloat16,
            _ => torch.ScalarType.Byte,
        };
        return new TensorEntry(name, dtype, shape, (long)offset, (long)offset + bytes)
        {
            Quantized = GgmlBlocks.IsBlockQuantized(type) ? type : null,
        };
    }

    static void CheckNoOverlap(string path, IEnumerable<TensorEntry> entries)
    {
        TensorEntry? previous = null;
        foreach (var entry in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (previous is not null && entry.Begin < previous.End)
                throw Corrupt(path, entry.Key, $"data [{entry.Begin}, {entry.End}) overlaps tensor '{previous.Key}' [{previous.Begin}, {previous.End})");
            previous = entry;
        }
    }

    internal static long AlignUp(long position, int alignment) => (position + alignment - 1) / alignment * alignment;

    static CheckpointException Corrupt(string path, string? key, string why) => new(path, key, $"corrupt GGUF file: {why}");

    /// <summary>Bounded little-endian reads: running past the end is "truncated", a length larger than what is left is refused before allocating.</summary>
    sealed class Reader(string path, Stream stream)
    {
        static readonly UTF8Encoding StrictUtf8 = new(false, true);
        readonly byte[] _buffer = new byte[8];

        /// <summary>The metadata key or tensor being read, named by errors.</summary>
        public string? Key { get; set; }

        long Left => stream.Length - stream.Position;

        Span<byte> Take(int count, string what)
        {
            if (Left < count) throw Corrupt(path, Key, $"the file ends inside {what} at byte {stream.Position} (truncated)");
            stream.ReadExactly(_buffer, 0, count);
            return _buffer.AsSpan(0, count);
        }

        public uint UInt32(string what) => BitConverter.ToUInt32(Take(4, what));
        public ulong UInt64(string what) => BitConverter.ToUInt64(Take(8, what));

        public string String(string what)
        {
            ulong length = UInt64(what);
            if (length > (ulong)Left) throw Corrupt(path, Key, $"a string of {length} bytes in {what} runs past the end of the file (truncated)");
            var bytes = new byte[length];
            stream.ReadExactly(bytes);
            try { return StrictUtf8.GetString(bytes); }
            catch (DecoderFallbackException) { throw Corrupt(path, Key, $"a string in {what} is not valid UTF-8"); }
        }

        public object Value(string key, GgufValueType type) =>
            type switch
            {
                GgufValueType.UInt8 => Take(1, key)[0],
                GgufValueType.Int8 => (sbyte)Take(1, key)[0],
                GgufValueType.UInt16 => BitConverter.ToUInt16(Take(2, key)),
                GgufValueType.Int16 => BitConverter.ToInt16(Take(2, key)),
                GgufValueType.UInt32 => UInt32(key),
                GgufValueType.Int32 => BitConverter.ToInt32(Take(4, key)),
                GgufValueType.Float32 => BitConverter.ToSingle(Take(4, key)),
                GgufValueType.Bool => Bool(key),
                GgufValueType.String => String(key),
                GgufValueType.UInt64 => UInt64(key),
                GgufValueType.Int64 => BitConverter.ToInt64(Take(8, key)),
                GgufValueType.Float64 => BitConverter.ToDouble(Take(8, key)),
                GgufValueType.Array => Array(key),
                _ => throw Corrupt(path, key, $"unknown metadata value type {(uint)type}"),
            };

        bool Bool(string key)
        {
            byte b = Take(1, key)[0];
            return b switch { 0 => false, 1 => true, _ => throw Corrupt(path, key, $"bool value {b} is neither 0 nor 1") };
        }

        GgufArray Array(string key)
        {
            var type = (GgufValueType)UInt32(key);
            if (type == GgufValueType.Array) throw Corrupt(path, key, "nested arrays are not supported");
            ulong count = UInt64(key);
            // Each element takes at least one byte: a count beyond the bytes left is corrupt, refused before allocating.
            if (count > (ulong)Left) throw Corrupt(path, key, $"array of {count} elements runs past the end of the file (truncated)");
            var values = new object[count];
            for (ulong i = 0; i < count; i++) values[i] = Value(key, type);
            return new GgufArray(type, values);
        }
    }
}
