using Microsoft.Win32.SafeHandles;
using Sd35.Errors;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// An open safetensors file. Tensors are read on demand, each straight into the storage that will hold it,
/// so loading a model needs about the model's own memory plus one tensor, never a second copy of the file.
/// </summary>
public sealed class SafetensorsFile : ITensorFile
{
    readonly FileStream _stream;
    readonly SafeFileHandle _handle;

    public string Path { get; }
    public SafetensorsHeader Header { get; }
    public IEnumerable<string> Keys => Header.Entries.Keys;

    SafetensorsFile(string path, FileStream stream, SafetensorsHeader header)
    {
        Path = path;
        _stream = stream;
        _handle = stream.SafeFileHandle;
        Header = header;
    }

    public static SafetensorsFile Open(string path)
    {
        PickleGuard.RejectPickle(path);
        if (!File.Exists(path)) throw new CheckpointException(path, null, "checkpoint file does not exist");
        FileStream stream;
        try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.RandomAccess); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CheckpointException(path, null, $"cannot be opened: {e.Message}", e); }
        try
        {
            return new SafetensorsFile(path, stream, SafetensorsHeader.Read(path, stream));
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    public TensorEntry Entry(string key) =>
        Header.Entries.TryGetValue(key, out var entry)
            ? entry
            : throw new CheckpointException(Path, key, "no such tensor in this file");

    /// <summary>Reads a tensor into a new CPU tensor of the stored dtype.</summary>
    public Tensor Read(string key)
    {
        var entry = Entry(key);
        var tensor = empty(entry.Shape, entry.DType, CPU);
        ReadBytes(entry, tensor);
        return tensor;
    }

    /// <summary>
    /// Copies a tensor into <paramref name="target"/>, converting dtype and device on the way. The shapes
    /// must already agree (the caller reports mismatches with both shapes).
    /// </summary>
    public void ReadInto(string key, Tensor target)
    {
        var entry = Entry(key);
        using var noGrad = no_grad();
        if (target.device_type == DeviceType.CPU && target.dtype == entry.DType && target.is_contiguous())
        {
            ReadBytes(entry, target);
            return;
        }
        using var staging = empty(entry.Shape, entry.DType, CPU);
        ReadBytes(entry, staging);
        target.copy_(staging);
    }

    void ReadBytes(TensorEntry entry, Tensor destination)
    {
        if (entry.Fp8 is { } format)
        {
            var stored = new byte[entry.End - entry.Begin];
            ReadStored(entry, stored);
            Fp8Format.ExpandToHalf(format, stored, destination.bytes);
            return;
        }
        ReadStored(entry, destination.bytes);
    }

    void ReadStored(TensorEntry entry, Span<byte> span)
    {
        long length = entry.End - entry.Begin;
        if (length > int.MaxValue)
            throw new CheckpointException(Path, entry.Key, $"is {length} bytes; tensors over 2 GiB are not supported");
        FileRange.Read(_handle, span[..(int)length], Header.DataStart + entry.Begin, Path, entry.Key);
    }

    public void Dispose() => _stream.Dispose();
}
