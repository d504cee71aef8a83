using Sd35.Tests.TestSupport;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Sd35.Tests.Fuzzing;

/// <summary>
/// Seeded damage to one input file, of the kinds users and disks produce: bytes flipped, truncation, garbage
/// appended, safetensors header fields changed, JSON values replaced by a wrong type, zero, a negative or a huge
/// number, keys removed, lines dropped. Each mutation returns the new bytes and a description for failure reports.
/// </summary>
sealed class Mutator(int seed)
{
    readonly Random _random = new(seed);

    /// <summary>Values a JSON field may be replaced with: wrong types, zeros, negatives, fractions and huge numbers.</summary>
    static JsonNode?[] Replacements() =>
    [
        JsonValue.Create("x"), JsonValue.Create(true), null, JsonValue.Create(0), JsonValue.Create(-1), JsonValue.Create(-5),
        JsonValue.Create(1.5), JsonValue.Create(int.MaxValue), JsonValue.Create(9007199254740993L), JsonValue.Create(1e20),
        JsonValue.Create(1e308), new JsonArray(), new JsonObject(), new JsonArray(JsonValue.Create(0)),
    ];

    public (byte[] Bytes, string What) Mutate(string path, byte[] original)
    {
        var name = Path.GetFileName(path);
        int choice = _random.Next(100);
        if (name.EndsWith(".safetensors"))
        {
            if (choice < 40) return HeaderField(original);
            if (choice < 55) return FlipBytes(original, headerOnly: true);
        }
        else if (name.EndsWith(".gguf") && choice < 60)
        {
            if (choice >= 30) return GgufField(original);
            var (head, what) = FlipBytes(original[..Math.Min(original.Length, GgufHeaderBytes)], headerOnly: false);
            return ([.. head, .. original[head.Length..]], "GGUF header " + what);
        }
        else if (name.EndsWith(".json") && choice < 60)
        {
            return choice < 45 ? ReplaceJsonValue(original) : RemoveJsonKey(original);
        }
        else if (name.EndsWith(".txt") && choice < 40)
        {
            return DropLines(original);
        }
        return (choice % 3) switch
        {
            0 => FlipBytes(original, headerOnly: false),
            1 => Truncate(original),
            _ => choice % 2 == 0 ? Append(original) : FlipBytes(original, headerOnly: false),
        };
    }

    /// <summary>The GGUF region damaged by header mutations: the counts, the metadata and the first tensor infos.</summary>
    const int GgufHeaderBytes = 4096;

    /// <summary>Overwrites a 4- or 8-byte field in the GGUF header with a value a reader must not trust (a count, a dim, a type, an offset).</summary>
    (byte[], string) GgufField(byte[] original)
    {
        var bytes = (byte[])original.Clone();
        int limit = Math.Min(bytes.Length, GgufHeaderBytes) - 8;
        if (limit <= 0) return Truncate(original);
        int at = _random.Next(limit) & ~3;
        ulong value = Pick(new[] { 0ul, 1ul, 3ul, 5ul, 31ul, 99ul, 0xFFFFFFFFul, 1ul << 40, ulong.MaxValue });
        if (_random.Next(2) == 0) BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), (uint)value);
        else BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), value);
        return (bytes, $"GGUF header field at {at} ← {value}");
    }

    (byte[], string) FlipBytes(byte[] original, bool headerOnly)
    {
        var bytes = (byte[])original.Clone();
        long limit = bytes.Length;
        if (headerOnly && bytes.Length >= 8) limit = Math.Min(bytes.Length, 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        int count = 1 + _random.Next(4);
        var where = new List<long>();
        for (int i = 0; i < count && limit > 0; i++)
        {
            long at = _random.NextInt64(limit);
            bytes[at] ^= (byte)(1 + _random.Next(255));
            where.Add(at);
        }
        return (bytes, $"{(headerOnly ? "header " : "")}bytes flipped at {string.Join(", ", where)}");
    }

    (byte[], string) Truncate(byte[] original)
    {
        int length = _random.Next(original.Length);
        return (original[..length], $"truncated to {length} of {original.Length} bytes");
    }

    (byte[], string) Append(byte[] original)
    {
        var garbage = new byte[1 + _random.Next(64)];
        _random.NextBytes(garbage);
        return ([.. original, .. garbage], $"{garbage.Length} random bytes appended");
    }

    (byte[], string) DropLines(byte[] original)
    {
        var lines = Encoding.UTF8.GetString(original).Split('\n').ToList();
        int at = _random.Next(lines.Count);
        if (_random.Next(2) == 0) lines.RemoveAt(at);
        else lines.Insert(at, lines[_random.Next(lines.Count)]);
        return (Encoding.UTF8.GetBytes(string.Join('\n', lines)), $"line {at} dropped or duplicated");
    }

    (byte[], string) ReplaceJsonValue(byte[] original)
    {
        if (!TryParse(original, out var root)) return FlipBytes(original, headerOnly: false);
        var (parent, key, node) = PickNode(root!);
        var replacement = Pick(Replacements());
        var text = replacement?.ToJsonString() ?? "null";
        if (parent is null) return (Encoding.UTF8.GetBytes(text), $"document replaced by {text}");
        var where = node?.GetPath() ?? $"{parent.GetPath()}.{key}";
        Set(parent, key, replacement);
        return (Encoding.UTF8.GetBytes(root!.ToJsonString()), $"{where} ← {text}");
    }

    (byte[], string) RemoveJsonKey(byte[] original)
    {
        if (!TryParse(original, out var root) || root is not JsonObject obj || obj.Count == 0) return Truncate(original);
        var (parent, key, node) = PickNode(root);
        var where = node?.GetPath() ?? key;
        if (parent is JsonObject o) o.Remove(key);
        else if (parent is JsonArray a) a.RemoveAt(int.Parse(key));
        else return Truncate(original);
        return (Encoding.UTF8.GetBytes(root.ToJsonString()), $"{where} removed");
    }

    /// <summary>Rewrites one field of one tensor's header entry (dtype, shape, data_offsets) and re-frames the file.</summary>
    (byte[], string) HeaderField(byte[] original)
    {
        if (original.Length < 8) return Truncate(original);
        long length = (long)BinaryPrimitives.ReadUInt64LittleEndian(original);
        if (length > original.Length - 8) return Truncate(original);
        if (!TryParse(original[8..(int)(8 + length)], out var root) || root is not JsonObject header) return Truncate(original);
        var keys = header.Select(p => p.Key).Where(k => k != "__metadata__").ToList();
        if (keys.Count == 0) return Truncate(original);
        var key = Pick(keys);
        var entry = header[key]!.AsObject();
        string what;
        switch (_random.Next(6))
        {
            case 0:
                var dtype = Pick(new[] { "F64", "F16", "I64", "I32", "U8", "BOOL", "F8_E4M3", "Q4", "" });
                entry["dtype"] = dtype;
                what = $"dtype ← {dtype}";
                break;
            case 1:
                var shape = entry["shape"]!.AsArray();
                int dim = shape.Count == 0 ? -1 : _random.Next(shape.Count);
                var value = Pick(Replacements());
                if (dim < 0) entry["shape"] = new JsonArray(value);
                else shape[dim] = value;
                what = $"shape[{dim}] ← {value?.ToJsonString() ?? "null"}";
                break;
            case 2:
                var offsets = entry["data_offsets"]!.AsArray();
                int which = _random.Next(2);
                var replacement = Pick(Replacements());
                offsets[which] = replacement;
                what = $"data_offsets[{which}] ← {replacement?.ToJsonString() ?? "null"}";
                break;
            case 3:
                var other = Pick(keys);
                entry["data_offsets"] = header[other]!["data_offsets"]!.DeepClone();
                what = $"data_offsets ← those of '{other}'";
                break;
            case 4:
                header.Remove(key);
                what = "entry removed";
                break;
            default:
                entry["shape"] = new JsonArray(entry["shape"]!.AsArray().Reverse().Select(n => n?.DeepClone()).ToArray());
                what = "shape reversed";
                break;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var bytes = new byte[8 + json.Length + original.Length - 8 - length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        original.AsSpan((int)(8 + length)).CopyTo(bytes.AsSpan(8 + json.Length));
        return (bytes, $"header of '{key}': {what}");
    }

    static bool TryParse(byte[] bytes, out JsonNode? root)
    {
        try
        {
            root = JsonNode.Parse(bytes);
            return root is not null;
        }
        catch (JsonException)
        {
            root = null;
            return false;
        }
    }

    /// <summary>A random node of the tree with its parent and key (null parent: the root); big objects (a vocabulary) are sampled, not walked.</summary>
    (JsonNode? Parent, string Key, JsonNode? Node) PickNode(JsonNode root)
    {
        JsonNode? parent = null;
        string key = "$";
        JsonNode? node = root;
        while (node is JsonObject or JsonArray && _random.Next(3) != 0)
        {
            if (node is JsonObject o && o.Count > 0)
            {
                var property = o.ElementAt(_random.Next(o.Count));
                (parent, key, node) = (o, property.Key, property.Value);
            }
            else if (node is JsonArray a && a.Count > 0)
            {
                int i = _random.Next(a.Count);
                (parent, key, node) = (a, i.ToString(), a[i]);
            }
            else break;
        }
        return (parent, key, node);
    }

    static void Set(JsonNode parent, string key, JsonNode? value)
    {
        if (parent is JsonObject o) o[key] = value;
        else if (parent is JsonArray a) a[int.Parse(key)] = value;
    }

    T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];
}
