using Microsoft.Win32.SafeHandles;
using Sd35.Errors;
using Sd35.Tensors.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// An open safetensors file. Tensors are read on demand, each straight into the storage that will hold it,
/// so loading a model needs about the model's own memory plus one tensor, never a second copy of the file. The file is
/// opened without a read pattern hint (<c>FileOptions.RandomAccess</c> would turn the kernel's read-ahead off); reads in
/// file order keep the kernel reading ahead of them (<see cref="AdviseAhead"/>).
/// </summary>
public sealed class SafetensorsFile : ITensorFile
{
    readonly FileStream _stream;
    readonly SafeFileHandle _handle;
    readonly long _dataLength;

    public string Path { get; }
    public SafetensorsHeader Header { get; }
    public IEnumerable<string> Keys => Header.Entries.Keys;

    SafetensorsFile(string path, FileStream stream, SafetensorsHeader header)
    {
        Path = path;
        _stream = stream;
        _handle = stream.SafeFileHandle;
        Header = header;
        _dataLength = header.Entries.Count == 0 ? 0 : header.Entries.Values.Max(e => e.End);
    }

    public static SafetensorsFile Open(string path)
    {
        PickleGuard.RejectPickle(path);
        if (!File.Exists(path)) throw new CheckpointException(path, null, "checkpoint file does not exist");
        FileStream stream;
        try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.None); }
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

    /// <summary>Reads a tensor into a new CPU tensor of the stored dtype (an fp8 tensor as its bytes, uint8 of its shape).</summary>
    public Tensor Read(string key)
    {
        var entry = Entry(key);
        var tensor = empty(entry.Shape, entry.DType, CPU);
        try
        {
            ReadBytes(entry, tensor, 0, entry.End - entry.Begin);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies a tensor's values into <paramref name="target"/>, converting dtype and device on the way (an fp8 tensor's
    /// values, exactly). The shapes must already agree (the caller reports mismatches with both shapes). A CPU target of
    /// the stored dtype gets the file's bytes straight into its memory; any other goes through a staging buffer of at
    /// most <see cref="StagingBytes"/>, converted piece by piece, so converting costs a small buffer, not a second tensor.
    /// </summary>
    public void ReadInto(string key, Tensor target)
    {
        var entry = Entry(key);
        long bytes = entry.End - entry.Begin, count = entry.ElementCount;
        using var noGrad = no_grad();
        if (entry.Quantized is { } fp8)
        {
            using var stored = Read(key);
            using var values = Fp8Format.Expand(stored, fp8, entry.Shape, target.dtype);
            target.copy_(values);
            return;
        }
        if (target.device_type == DeviceType.CPU && target.dtype == entry.DType && target.is_contiguous())
        {
            ReadBytes(entry, target, 0, bytes);
            return;
        }
        if (count == 0) return;
        if (!target.is_contiguous())
        {
            using var whole = Read(key);
            target.copy_(whole);
            return;
        }
        long elementSize = bytes / count;
        long pieceElements = Math.Clamp(StagingBytes / elementSize, 1, count);
        using var staging = empty([pieceElements], entry.DType, CPU);
        using var flat = target.view(-1);
        for (long start = 0; start < count; start += pieceElements)
        {
            long n = Math.Min(pieceElements, count - start);
            using var source = staging.narrow(0, 0, n);
            ReadBytes(entry, source, start * elementSize, n * elementSize);
            using var destination = flat.narrow(0, start, n);
            destination.copy_(source);
        }
    }

    /// <summary>
    /// <see cref="ReadInto"/> for a tensor that owns its storage (a model's parameter or buffer), which may be re-seated:
    /// a CPU tensor of the stored dtype is given new storage placed so that the file's block alignment matches, and the
    /// file's bytes are read into it by O_DIRECT (the disk writes them straight into place: no page cache, no copy —
    /// on a busy two-core machine the copy, not the disk, set the buffered reader's rate). Anything else, or a file or
    /// filesystem without O_DIRECT, is read as <see cref="ReadInto"/> reads it.
    /// </summary>
    public void ReadIntoOwned(string key, Tensor target)
    {
        var entry = Entry(key);
        using var noGrad = no_grad();
        if (entry.Quantized is null && target.device_type == DeviceType.CPU && target.dtype == entry.DType && target.is_contiguous() && TryReadDirect(entry, target)) return;
        ReadInto(key, target);
    }

    /// <summary>Below this a tensor is not worth its own direct read (and its slack).</summary>
    const long MinDirectBytes = 1L << 20;

    /// <summary>The alignment O_DIRECT needs of offsets, lengths and memory: 4 KiB covers 512-byte and 4 KiB blocks.</summary>
    const long DirectAlignment = 4096;

    SafeFileHandle? _directHandle;
    bool _directUnavailable;

    unsafe bool TryReadDirect(TensorEntry entry, Tensor target)
    {
        long length = entry.End - entry.Begin, count = entry.ElementCount, elementSize = target.ElementSize;
        long fileStart = Header.DataStart + entry.Begin;
        if (length < MinDirectBytes || fileStart % elementSize != 0 || DirectHandle() is not { } handle) return false;
        // Storage with a block of slack on each side, the tensor placed so that its address ≡ its file offset (mod the
        // alignment): the enclosing aligned block range of the file then lands exactly over it, the slack taking the
        // neighbours' bytes. CPU allocations are 64-byte aligned and the offset a multiple of the element size, so such a
        // place exists.
        long slackElements = DirectAlignment / elementSize;
        using var storage = empty([count + 3 * slackElements], entry.DType, CPU);
        long address;
        using (var first = storage.narrow(0, 0, 1)) fixed (byte* p = first.bytes) address = (long)p;
        long front = fileStart % DirectAlignment;
        long shift = ((fileStart - address) % DirectAlignment + DirectAlignment) % DirectAlignment;
        if (shift % elementSize != 0) return false;
        long place = shift / elementSize;
        if (place * elementSize < front) place += slackElements;
        long blockStart = fileStart - front;
        long blockEnd = (fileStart + length + DirectAlignment - 1) / DirectAlignment * DirectAlignment;
        byte* memory = (byte*)address + place * elementSize - front;
        try
        {
            ReadDirectPieces(handle, (nint)memory, blockStart, blockEnd, fileStart + length, entry.Key);
        }
        catch (AggregateException e) when (e.InnerExceptions.All(x => x is IOException or CheckpointException))
        {
            if (e.InnerExceptions.FirstOrDefault(x => x is CheckpointException) is { } truncated) throw truncated;
            _directUnavailable = true;
            return false;
        }
        catch (IOException)
        {
            // The filesystem refused this direct read (alignment it needs beyond 4 KiB, or no O_DIRECT at all): buffered from now on.
            _directUnavailable = true;
            return false;
        }
        using var placed = storage.narrow(0, place, count);
        using var shaped = placed.view(entry.Shape);
        target.set_(shaped);
        _readingDirect = true;
        return true;
    }

    /// <summary>Bytes per direct read request, and how many are in flight at once.</summary>
    const int DirectPieceBytes = 2 << 20, DirectReadsInFlight = 8;

    /// <summary>
    /// Reads the aligned range [<paramref name="blockStart"/>, <paramref name="blockEnd"/>) into memory in 2 MiB pieces,
    /// eight at a time. A direct read has no kernel read-ahead behind it: one request at a time left the disk idle
    /// between requests, and on the gate's model (tensors of 1–28 MB) the loader reached 0.59 of a buffered sequential
    /// reader whose read-ahead keeps several requests queued (8 MiB × 4: 0.62–0.70; 2 MiB × 8: 0.81; 1 MiB × 16: 0.70–0.75).
    /// </summary>
    void ReadDirectPieces(SafeFileHandle handle, nint memory, long blockStart, long blockEnd, long dataEnd, string key)
    {
        long pieces = (blockEnd - blockStart + DirectPieceBytes - 1) / DirectPieceBytes;
        void ReadPiece(long index)
        {
            long start = blockStart + index * DirectPieceBytes, end = Math.Min(start + DirectPieceBytes, blockEnd);
            for (long position = start; position < end;)
            {
                int n;
                unsafe { n = RandomAccess.Read(handle, new Span<byte>((byte*)memory + (position - blockStart), (int)(end - position)), position); }
                if (n == 0)
                {
                    // Past the data's end only the file's own end may stop a read (the last block is read whole).
                    if (position >= dataEnd) return;
                    throw new CheckpointException(Path, key, "corrupt safetensors file: the data is truncated (the file shrank after it was opened?)");
                }
                position += n;
            }
        }
        if (pieces == 1) ReadPiece(0);
        else Parallel.For(0L, pieces, new ParallelOptions { MaxDegreeOfParallelism = DirectReadsInFlight }, ReadPiece);
    }

    SafeFileHandle? DirectHandle()
    {
        if (_directUnavailable || !OperatingSystem.IsLinux()) return null;
        if (_directHandle is not null) return _directHandle;
        _directHandle = FileAdvice.OpenDirect(Path);
        _directUnavailable = _directHandle is null;
        return _directHandle;
    }

    /// <summary>The staging buffer of a converting read: large enough that each copy is cheap, small beside any model.</summary>
    public const long StagingBytes = 16L << 20;

    /// <summary>Bytes per read call: tensors of any size (over 2 GiB too), in pieces the kernel handles in one go.</summary>
    const int ReadPieceBytes = 64 << 20;

    /// <summary>How far ahead of a sequential reader the kernel is asked to read (<see cref="FileAdvice.WillNeed"/>).</summary>
    const long ReadAheadBytes = 256L << 20;

    long _advisedTo, _lastEnd;

    /// <summary>
    /// Reads bytes [<paramref name="from"/>, <paramref name="from"/> + <paramref name="length"/>) of the entry's data into
    /// the start of <paramref name="destination"/>'s memory (CPU, contiguous, at least that large).
    /// </summary>
    void ReadBytes(TensorEntry entry, Tensor destination, long from, long length)
    {
        if (length == 0) return;
        AdviseAhead(entry.Begin + from, entry.Begin + from + length);
        long elementSize = destination.ElementSize;
        using var flat = destination.view(-1);
        for (long read = 0; read < length;)
        {
            // A span is at most 2 GiB, so larger tensors are read through views of at most one piece each.
            long want = Math.Min(ReadPieceBytes, length - read);
            using var piece = flat.narrow(0, read / elementSize, want / elementSize);
            var span = piece.bytes;
            for (int got = 0; got < want;)
            {
                int n = RandomAccess.Read(_handle, span[got..], Header.DataStart + entry.Begin + from + read + got);
                if (n == 0) throw new CheckpointException(Path, entry.Key, "corrupt safetensors file: the data is truncated (the file shrank after it was opened?)");
                got += n;
            }
            read += want;
        }
    }

    /// <summary>
    /// A read that continues where the last one ended (the loader reads tensors in file order) keeps the kernel
    /// <see cref="ReadAheadBytes"/> ahead of it, so the disk never waits for the copy into place; any other read asks
    /// for its own range only, so a lookup of one tensor reads nothing more.
    /// </summary>
    void AdviseAhead(long begin, long end)
    {
        bool following = begin >= _lastEnd && begin <= _advisedTo;
        long from = following ? Math.Max(begin, _advisedTo) : begin;
        long to = following ? Math.Min(end + ReadAheadBytes, Math.Max(end, ReadAheadLimit(end))) : end;
        if (to > from) FileAdvice.WillNeed(_handle, Header.DataStart + from, to - from);
        _advisedTo = Math.Max(to, end);
        _lastEnd = end;
    }

    /// <summary>Set once a direct read succeeded: from then on this load's large tensors come by DMA, not through the page cache.</summary>
    bool _readingDirect;

    /// <summary>Where the entries that are large enough for a direct read begin, in file order.</summary>
    long[]? _directCandidateBegins;

    /// <summary>
    /// How far the small tensors' read-ahead may reach: while large tensors are read directly, up to the next one only.
    /// Advice that runs over them has the disk read their bytes twice (once into the page cache for nothing, once by
    /// DMA). The full-size transformer interleaves biases and norms with its large weights in every block; stopping the
    /// advice there took its load from 0.60 to 0.94 of <c>dd</c>'s rate (measured while the "direct" handle was, unknown
    /// to us, still buffered: docs/loading.md). A load that converts every tensor never reads directly, so it keeps the
    /// full read-ahead.
    /// </summary>
    long ReadAheadLimit(long end)
    {
        if (!_readingDirect) return _dataLength;
        _directCandidateBegins ??= Header.Entries.Values.Where(e => e.End - e.Begin >= MinDirectBytes).Select(e => e.Begin).Order().ToArray();
        int next = Array.BinarySearch(_directCandidateBegins, end);
        if (next < 0) next = ~next;
        return next < _directCandidateBegins.Length ? _directCandidateBegins[next] : _dataLength;
    }

    public void Dispose()
    {
        _directHandle?.Dispose();
        _stream.Dispose();
    }
}
