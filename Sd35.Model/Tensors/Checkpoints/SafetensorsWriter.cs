using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints;

/// <summary>Writes tensors as a standard safetensors file (sorted keys, header padded to 8 bytes).</summary>
public static class SafetensorsWriter
{
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ordered = tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (key, tensor) in ordered)
        {
            long size = tensor.numel() * SafetensorsDType.SizeOf(tensor.dtype);
            header[key] = new
            {
                dtype = SafetensorsDType.NameOf(tensor.dtype),
                shape = tensor.shape,
                data_offsets = new[] { offset, offset + size },
            };
            offset += size;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8;
        var headerBytes = new byte[padded];
        Array.Fill(headerBytes, (byte)' ');
        json.CopyTo(headerBytes, 0);

        // Write to a temporary name and move into place, so a failed write never leaves a file that looks complete.
        var temporary = path + ".partial";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
            stream.Write(length);
            stream.Write(headerBytes);
            foreach (var (_, tensor) in ordered)
            {
                using var cpu = tensor.detach().cpu().contiguous();
                stream.Write(cpu.bytes);
            }
        }
        File.Move(temporary, path, overwrite: true);
    }
}
