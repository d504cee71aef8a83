using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints;

/// <summary>One tensor to be written: its checkpoint name, element type and shape (the values come later, one at a time).</summary>
public sealed record TensorSpec(string Name, ScalarType DType, long[] Shape)
{
    public long ByteCount => Shape.Aggregate(1L, (a, b) => a * b) * SafetensorsDType.SizeOf(DType);
}

/// <summary>
/// Writes a checkpoint as Hugging Face does: one safetensors file while it fits <c>maxShardBytes</c>, otherwise
/// <c>{prefix}-0000N-of-0000M.safetensors</c> shards plus <c>{prefix}.safetensors.index.json</c>. Shards are filled
/// in the order given, a new shard starting when the next tensor would overflow the current one (a tensor larger
/// than the limit gets a shard of its own), as <c>huggingface_hub.split_torch_state_dict_into_shards</c> does.
/// Every header is known from the specs alone, so each tensor's values are made, written and dropped one at a
/// time: writing needs memory for one tensor, whatever the checkpoint's size.
/// </summary>
public static class ShardedSafetensorsWriter
{
    /// <summary>The shard files' names and the tensors each holds, in order.</summary>
    public static IReadOnlyList<(string File, IReadOnlyList<TensorSpec> Tensors)> Plan(string prefix, IReadOnlyList<TensorSpec> specs, long maxShardBytes)
    {
        var shards = new List<List<TensorSpec>>();
        long current = 0;
        foreach (var spec in specs)
        {
            if (shards.Count == 0 || (current + spec.ByteCount > maxShardBytes && current > 0))
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(spec);
            current += spec.ByteCount;
        }
        if (shards.Count <= 1) return [($"{prefix}.safetensors", shards.Count == 0 ? [] : shards[0])];
        return shards.Select((s, i) => ($"{prefix}-{i + 1:D5}-of-{shards.Count:D5}.safetensors", (IReadOnlyList<TensorSpec>)s)).ToList();
    }

    /// <summary>
    /// Writes the checkpoint into <paramref name="directory"/>; <paramref name="values"/> makes one tensor (on the CPU,
    /// of the spec's dtype and shape) and the writer disposes it once its bytes are on disk.
    /// </summary>
    /// <returns>the weights path a loader opens: the single file, or the index</returns>
    public static string Write(string directory, string prefix, IReadOnlyList<TensorSpec> specs, long maxShardBytes,
        Func<TensorSpec, Tensor> values, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Directory.CreateDirectory(directory);
        var plan = Plan(prefix, specs, maxShardBytes);
        foreach (var (file, tensors) in plan) WriteFile(Path.Combine(directory, file), tensors, values, metadata);
        if (plan.Count == 1) return Path.Combine(directory, plan[0].File);

        var weightMap = new JsonObject();
        foreach (var (file, spec) in plan.SelectMany(p => p.Tensors.Select(t => (p.File, t))).OrderBy(x => x.t.Name, StringComparer.Ordinal))
            weightMap[spec.Name] = file;
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = specs.Sum(s => s.ByteCount) },
            ["weight_map"] = weightMap,
        };
        var indexPath = Path.Combine(directory, $"{prefix}.safetensors.index.json");
        File.WriteAllText(indexPath, index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return indexPath;
    }

    /// <summary>
    /// One safetensors file of <paramref name="tensors"/> in the order given (under a temporary name, moved into place
    /// once complete); <paramref name="values"/> makes each tensor, disposed once its bytes are written.
    /// </summary>
    public static void WriteFile(string path, IReadOnlyList<TensorSpec> tensors, Func<TensorSpec, Tensor> values, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is { Count: > 0 }) header["__metadata__"] = new JsonObject(metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        long offset = 0;
        foreach (var spec in tensors)
        {
            header[spec.Name] = new JsonObject
            {
                ["dtype"] = SafetensorsDType.NameOf(spec.DType),
                ["shape"] = new JsonArray(spec.Shape.Select(d => (JsonNode?)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + spec.ByteCount),
            };
            offset += spec.ByteCount;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;
        var headerBytes = new byte[padded];
        Array.Fill(headerBytes, (byte)' ');
        json.CopyTo(headerBytes, 0);

        // A temporary name, moved into place once complete: a failed run never leaves a file that looks whole.
        var temporary = path + ".partial";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
            stream.Write(length);
            stream.Write(headerBytes);
            foreach (var spec in tensors)
            {
                using var tensor = values(spec);
                if (tensor.dtype != spec.DType || !tensor.shape.SequenceEqual(spec.Shape))
                    throw new InvalidOperationException($"values for '{spec.Name}' are {tensor.dtype} [{string.Join(", ", tensor.shape)}], the header says {spec.DType} [{string.Join(", ", spec.Shape)}]");
                using var cpu = tensor.device_type == TorchSharp.DeviceType.CPU && tensor.is_contiguous() ? tensor.alias() : tensor.cpu().contiguous();
                WriteBytes(stream, cpu);
            }
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Writes a tensor's bytes in pieces under 2 GiB (a span cannot be longer).</summary>
    static void WriteBytes(Stream stream, Tensor tensor)
    {
        using var flat = tensor.reshape(-1);
        long perPiece = (1L << 30) / tensor.ElementSize;
        for (long start = 0; start < flat.numel(); start += perPiece)
        {
            using var piece = flat.narrow(0, start, Math.Min(perPiece, flat.numel() - start));
            stream.Write(piece.bytes);
        }
    }
}
