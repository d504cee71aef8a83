using Microsoft.Win32.SafeHandles;
using Sd35.Errors;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tensors.Gguf;

/// <summary>
/// An open GGUF file. F32, F16 and BF16 tensors read as dense tensors in the torch order; block-quantized tensors
/// (Q8_0, Q5_0, Q5_1, Q4_0, Q4_1, …) read as their raw blocks, uint8 <c>[rows, bytes per row]</c>, with the ggml type
/// and logical shape in the entry (<see cref="TensorEntry.Quantized"/>), for the quantized layers to keep as they are.
/// </summary>
public sealed class GgufFile : ITensorFile
{
    readonly FileStream _stream;
    readonly SafeFileHandle _handle;

    public string Path { get; }
    public GgufHeader Header { get; }
    public IEnumerable<string> Keys => Header.Order;

    GgufFile(string path, FileStream stream, GgufHeader header) => (Path, _stream, _handle, Header) = (path, stream, stream.SafeFileHandle, header);

    /// <summary>Whether <paramref name="path"/> starts with the GGUF magic (a cheap sniff; <see cref="Open"/> validates the rest).</summary>
    public static bool HasMagic(string path)
    {
        if (!File.Exists(path)) return false;
        using var stream = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        return stream.Read(magic) == 4 && BitConverter.ToUInt32(magic) == GgufHeader.Magic;
    }

    public static GgufFile Open(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, null, "checkpoint file does not exist");
        FileStream stream;
        try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16, FileOptions.RandomAccess); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CheckpointException(path, null, $"cannot be opened: {e.Message}", e); }
        try { return new GgufFile(path, stream, GgufHeader.Read(path, stream)); }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    public TensorEntry Entry(string key) =>
        Header.Entries.TryGetValue(key, out var entry) ? entry : throw new CheckpointException(Path, key, "no such tensor in this file");

    public Tensor Read(string key)
    {
        var entry = Entry(key);
        var tensor = entry.Quantized is { } type ? empty(RawShape(entry, type), ScalarType.Byte, CPU) : empty(entry.Shape, entry.DType, CPU);
        ReadStored(entry, tensor);
        return tensor;
    }

    public void ReadInto(string key, Tensor target)
    {
        var entry = Entry(key);
        if (entry.Quantized is { } type)
            throw new CheckpointException(Path, key, $"is stored as {type} blocks; it cannot be read into a dense {target.dtype} tensor");
        using var noGrad = no_grad();
        if (target.device_type == DeviceType.CPU && target.dtype == entry.DType && target.is_contiguous())
        {
            ReadStored(entry, target);
            return;
        }
        using var staging = empty(entry.Shape, entry.DType, CPU);
        ReadStored(entry, staging);
        target.copy_(staging);
    }

    /// <summary>The raw blocks as rows: every dimension but the innermost, by the bytes of one row.</summary>
    public static long[] RawShape(TensorEntry entry, GgmlType type)
    {
        long rowLength = entry.Shape[^1];
        return [.. entry.Shape[..^1], GgmlBlocks.BytesOf(type, rowLength)];
    }

    void ReadStored(TensorEntry entry, Tensor destination)
    {
        long length = entry.End - entry.Begin;
        if (length > int.MaxValue) throw new CheckpointException(Path, entry.Key, $"is {length} bytes; tensors over 2 GiB are not supported");
        FileRange.Read(_handle, destination.bytes[..(int)length], Header.DataStart + entry.Begin, Path, entry.Key);
    }

    public void Dispose() => _stream.Dispose();
}
