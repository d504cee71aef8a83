namespace Sd35.Profiling;

/// <summary>What an operation mostly is, for the cost model: each kind runs at its own rate on an accelerator.</summary>
public enum OpKind
{
    /// <summary>Matrix multiplication with a weight (linear layers).</summary>
    Gemm,
    /// <summary>Softmax attention of queries over keys (the two GEMMs and the softmax of a fused kernel).</summary>
    Attention,
    /// <summary>Convolution.</summary>
    Conv,
    /// <summary>LayerNorm, RMSNorm, GroupNorm.</summary>
    Norm,
    /// <summary>Element-wise arithmetic, activations, residuals, casts and gathers of rows.</summary>
    Elementwise,
}

/// <summary>One operation one device ran: its work and the memory traffic of an unfused kernel (inputs and weights read once, output written once).</summary>
public sealed record OpEvent(string Section, OpKind Kind, string Name, double Flops, long BytesRead, long BytesWritten);

/// <summary>
/// One collective one device took part in: the group's label and members (device ids in rank order), the bytes of
/// this device's own input (the message), what it sent to and received from other devices, and whether it was
/// posted asynchronously (a ring step that a real backend overlaps with the attention on the current block).
/// </summary>
public sealed record CollectiveEvent(
    string Section, string Op, string Label, IReadOnlyList<int> Members, long MessageBytes, long BytesSent, long BytesReceived, bool Async);

/// <summary>
/// Collects what one device's rank program computes and communicates, in order. It is ambient per thread
/// (<see cref="Use"/>): each rank runs on its own thread, so a recorder installed at the start of a rank program sees
/// exactly that rank's work, from the model code's compute hooks (<see cref="Sd35.Layers.Kernels"/>) and from the
/// collectives. With no recorder installed the hooks cost one thread-static read.
/// </summary>
public sealed class OpRecorder
{
    [ThreadStatic] static OpRecorder? s_current;

    readonly List<OpEvent> _ops = [];
    readonly List<CollectiveEvent> _collectives = [];
    readonly Stack<string> _sections = new();

    public OpRecorder(int deviceId) => DeviceId = deviceId;

    public int DeviceId { get; }

    /// <summary>The recorder of the calling thread, or null when nothing is being recorded.</summary>
    public static OpRecorder? Current => s_current;

    public IReadOnlyList<OpEvent> Ops => _ops;
    public IReadOnlyList<CollectiveEvent> Collectives => _collectives;

    /// <summary>The innermost open section ("" outside any).</summary>
    public string Section => _sections.Count == 0 ? "" : _sections.Peek();

    /// <summary>Installs this recorder on the calling thread until the result is disposed.</summary>
    public IDisposable Use()
    {
        var previous = s_current;
        s_current = this;
        return new Restore(() => s_current = previous);
    }

    /// <summary>
    /// Attributes everything recorded on this thread until disposal to <paramref name="name"/> (clip_encoding,
    /// t5_encoding, denoising_step, vae). A no-op when no recorder is installed.
    /// </summary>
    public static IDisposable InSection(string name)
    {
        var recorder = s_current;
        if (recorder is null) return Restore.Nothing;
        recorder._sections.Push(name);
        return new Restore(() => recorder._sections.Pop());
    }

    public void Add(OpKind kind, string name, double flops, long bytesRead, long bytesWritten) =>
        _ops.Add(new OpEvent(Section, kind, name, flops, bytesRead, bytesWritten));

    public void Add(string op, string label, IReadOnlyList<int> members, long messageBytes, long sent, long received, bool isAsync) =>
        _collectives.Add(new CollectiveEvent(Section, op, label, members, messageBytes, sent, received, isAsync));

    sealed class Restore(Action undo) : IDisposable
    {
        public static readonly IDisposable Nothing = new Restore(() => { });
        Action? _undo = undo;
        public void Dispose() => Interlocked.Exchange(ref _undo, null)?.Invoke();
    }
}

/// <summary>The sections of a generation, named as the reference's perf tests name them.</summary>
public static class Sections
{
    public const string Clip = "clip_encoding";
    public const string T5 = "t5_encoding";
    /// <summary>Encoding outside the encoders themselves (handing the prompt to every device).</summary>
    public const string Encoding = "total_encoding";
    public const string Step = "denoising_step";
    /// <summary>The latent-independent part of every denoising step, made once before the first for the whole schedule.</summary>
    public const string Conditioning = "denoising_conditioning";
    public const string Vae = "vae";
}
