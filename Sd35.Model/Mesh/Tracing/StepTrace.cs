using System.Diagnostics;
using Sd35.Profiling;
using static TorchSharp.torch;

namespace Sd35.Mesh.Tracing;

/// <summary>One entry of a rank's captured step program, with the Stopwatch timestamps of its span.</summary>
public abstract record TracedEvent(long StartTimestamp, long EndTimestamp);

/// <summary>
/// A compute op of a captured step: name, kind, the section it ran in, its input and output shapes and dtype, its FLOPs
/// and bytes, and its span. <paramref name="StartObserved"/> is false for an op counted after the fact by code that
/// computed it by other means (see <see cref="OpSample"/>): its span then starts where the rank's previous event ended,
/// so it also holds the untracked glue (views, small element-wise ops) before it.
/// </summary>
public sealed record TracedOp(
    string Name, OpKind Kind, string Section, IReadOnlyList<string> InputShapes, string OutputShape, string DType,
    double Flops, long BytesRead, long BytesWritten, long StartTimestamp, long EndTimestamp, bool StartObserved)
    : TracedEvent(StartTimestamp, EndTimestamp);

/// <summary>A collective of a captured step with its bytes, whether it was posted asynchronously, and when it ran.</summary>
public sealed record TracedCollective(CollectiveCall Call, long StartTimestamp, long EndTimestamp, long BytesSent, long BytesReceived, bool Async = false)
    : TracedEvent(StartTimestamp, EndTimestamp);

/// <summary>A rank's step program as captured: every op and collective of one step in program order, and the step's start and end.</summary>
public sealed record RankStepProgram(int Rank, string StepKind, long StartTimestamp, long EndTimestamp, IReadOnlyList<TracedEvent> Events)
{
    public IReadOnlyList<TracedCollective> Collectives { get; } = Events.OfType<TracedCollective>().ToArray();
    public IReadOnlyList<TracedOp> Ops { get; } = Events.OfType<TracedOp>().ToArray();
}

/// <summary>A traced step that did not follow its capture: names the rank, the position, and both calls.</summary>
public sealed class TraceDivergenceException(int rank, string stepKind, int index, CollectiveCall? expected, CollectiveCall? actual)
    : Exception($"rank {rank} diverged from its captured {stepKind} step program at collective #{index}: " +
                $"captured {expected?.ToString() ?? "nothing (the capture ended)"}, now {actual?.ToString() ?? "nothing (the step ended early)"}")
{
    public int Rank { get; } = rank;
    public CollectiveCall? Expected { get; } = expected;
    public CollectiveCall? Actual { get; } = actual;
}

/// <summary>
/// The step trace of one pipeline: TorchSharp has no device trace or graph capture, so this is the honest stand-in.
/// The first traced step of each kind (a plain guided step, or one with skip-layer guidance) <b>captures</b> each rank's
/// step program — every compute op the kernels report (name, shapes, dtype, FLOPs, bytes) and every collective (group,
/// shape, dtype, bytes) in order, each with its time span, from the one instrumentation hook
/// (<see cref="Instrumentation"/>) that the cost model uses too; every
/// later traced step of that kind is <b>checked</b> collective by collective against the capture before each collective
/// is joined, so a rank that would issue a different op, shape, dtype or group, or a different number of collectives,
/// fails at once naming itself, the position and both calls, instead of hanging its peers. The capture exports as
/// Chrome / Perfetto trace-event JSON (<see cref="TraceExport"/>).
/// The capture also places the step program's receive buffers: every buffer a backend asks for
/// (<see cref="Instrumentation.ReceiveBuffer"/>; the MPI backend receives every message into one) is allocated once per
/// rank, step kind, collective and part, and every later step of that kind receives into the same memory. Nothing
/// outlives its step (each step's collective results are consumed within it), so reuse cannot change a value.
/// The in-process backend has no receive buffer to place: a receiver adopts the sender's own copy.
/// Thread-safe: every rank thread records into its own program. Disposing releases the receive buffers.
/// </summary>
public sealed class StepTrace : IDisposable
{
    readonly object _gate = new();
    readonly Dictionary<(int Rank, string Kind), RankStepProgram> _captured = new();
    readonly Dictionary<(int Rank, string Kind), ReceiveBuffers> _buffers = new();
    long _checkedSteps, _buffersPlaced, _buffersReused;
    bool _disposed;

    /// <summary>The captured programs, by rank and step kind.</summary>
    public IReadOnlyList<RankStepProgram> Captured
    {
        get { lock (_gate) return _captured.Values.OrderBy(p => p.StepKind, StringComparer.Ordinal).ThenBy(p => p.Rank).ToArray(); }
    }

    /// <summary>How many rank-steps were checked against a capture (and followed it).</summary>
    public long CheckedSteps => Interlocked.Read(ref _checkedSteps);

    /// <summary>Receive buffers allocated (by the captures, and again only where a received shape changed).</summary>
    public long ReceiveBuffersPlaced => Interlocked.Read(ref _buffersPlaced);

    /// <summary>Receives that landed in a buffer placed before, instead of new memory.</summary>
    public long ReceiveBuffersReused => Interlocked.Read(ref _buffersReused);

    /// <summary>How many receive buffers one rank's step program of one kind keeps (0 when it has none).</summary>
    public int ReceiveBufferCount(int rank, string stepKind)
    {
        lock (_gate) return _buffers.TryGetValue((rank, stepKind), out var buffers) ? buffers.Count : 0;
    }

    /// <summary>Bytes held by the receive buffers now.</summary>
    public long ReceiveBufferBytes
    {
        get { lock (_gate) return _buffers.Values.Sum(b => b.Bytes); }
    }

    /// <summary>
    /// Begins a traced step on the calling rank thread: captures if this rank has no program of this kind yet, else
    /// checks against it. Call <see cref="TracedStep.Complete"/> when the step finished normally (a capture is kept, a
    /// check fails if the step issued fewer collectives than captured); disposing without it (an exception is
    /// unwinding the step) only stops watching, so the original error is what the run reports.
    /// </summary>
    public TracedStep Step(int rank, string stepKind)
    {
        RankStepProgram? captured;
        ReceiveBuffers? buffers;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _captured.TryGetValue((rank, stepKind), out captured);
            if (!_buffers.TryGetValue((rank, stepKind), out buffers)) _buffers[(rank, stepKind)] = buffers = new ReceiveBuffers(this);
        }
        buffers.StartStep();
        IStepSink sink = captured is null ? new Recorder(this, rank, stepKind, buffers) : new Checker(this, captured, buffers);
        return new TracedStep(sink, Instrumentation.Install(sink));
    }

    /// <summary>Releases the receive buffers; call it once no traced step runs (the pipeline's generations are over).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var buffers in _buffers.Values) buffers.Dispose();
            _buffers.Clear();
        }
    }

    /// <summary>A step being captured or checked on this rank thread.</summary>
    public sealed class TracedStep : IDisposable
    {
        readonly IStepSink _sink;
        readonly IDisposable _installed;
        bool _disposed;

        internal TracedStep(IStepSink sink, IDisposable installed) => (_sink, _installed) = (sink, installed);

        public void Complete()
        {
            Dispose();
            _sink.End();
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _installed.Dispose();
        }
    }

    internal interface IStepSink : IInstrumentationSink, IReceiveBufferSource
    {
        void End();
    }

    /// <summary>
    /// One rank's receive buffers for one step kind, by collective (its position in the step program) and part (a
    /// collective may receive several messages). Used by one rank thread at a time; the trace's lock covers disposal.
    /// </summary>
    sealed class ReceiveBuffers(StepTrace trace) : IDisposable
    {
        readonly Dictionary<(int Collective, int Part), Tensor> _kept = new();
        int _collective = -1, _part;

        public long Bytes => _kept.Values.Sum(t => t.NumberOfElements * t.ElementSize);
        public int Count => _kept.Count;

        /// <summary>The step begins: collectives are numbered from the first again.</summary>
        public void StartStep() => _collective = -1;

        /// <summary>The next collective of the step begins (called before it is joined).</summary>
        public void NextCollective()
        {
            _collective++;
            _part = 0;
        }

        public Tensor Take(long[] shape, ScalarType dtype)
        {
            var key = (_collective, _part++);
            if (_kept.TryGetValue(key, out var kept) && kept.dtype == dtype && kept.shape.AsSpan().SequenceEqual(shape))
            {
                Interlocked.Increment(ref trace._buffersReused);
            }
            else
            {
                // First use, or another rank sent a different extent this time: place (again) and keep.
                kept?.Dispose();
                kept = empty(shape, dtype).DetachFromDisposeScope();
                _kept[key] = kept;
                Interlocked.Increment(ref trace._buffersPlaced);
            }
            return kept.alias();          // a handle of the caller's, as a new tensor would be; the storage stays here
        }

        public void Dispose()
        {
            foreach (var t in _kept.Values) t.Dispose();
            _kept.Clear();
        }
    }

    /// <summary>Captures: keeps every op (its shapes copied now, the tensors are the caller's) and collective in order.</summary>
    sealed class Recorder(StepTrace trace, int rank, string kind, ReceiveBuffers buffers) : IStepSink
    {
        readonly long _start = Stopwatch.GetTimestamp();
        readonly List<TracedEvent> _events = [];
        long _lastEnd = Stopwatch.GetTimestamp();

        public void Op(in OpSample op)
        {
            bool observed = op.StartTimestamp != Instrumentation.Unknown;
            long start = observed ? op.StartTimestamp : _lastEnd;
            var inputs = op.Inputs.Where(t => t is not null).Select(t => Shape(t!)).ToArray();
            _events.Add(new TracedOp(op.Name, op.Kind, op.Section, inputs, Shape(op.Output), op.Output.dtype.ToString(),
                op.Flops, op.BytesRead, op.BytesWritten, start, op.EndTimestamp, observed));
            _lastEnd = op.EndTimestamp;
        }

        public void BeforeCollective(CollectiveCall call) => buffers.NextCollective();

        public Tensor? ReceiveBuffer(long[] shape, ScalarType dtype) => buffers.Take(shape, dtype);

        public void Collective(CollectiveSample c)
        {
            _events.Add(new TracedCollective(c.Call, c.StartTimestamp, c.EndTimestamp, c.BytesSent, c.BytesReceived, c.Async));
            _lastEnd = c.EndTimestamp;
        }

        public void End()
        {
            var program = new RankStepProgram(rank, kind, _start, Stopwatch.GetTimestamp(), _events.ToArray());
            lock (trace._gate) trace._captured.TryAdd((rank, kind), program);
        }

        static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";
    }

    /// <summary>Checks: compares each collective with the capture before it is joined; ops are not looked at (they cannot hang a peer).</summary>
    sealed class Checker(StepTrace trace, RankStepProgram captured, ReceiveBuffers buffers) : IStepSink
    {
        int _next;

        public void Op(in OpSample op) { }

        public void BeforeCollective(CollectiveCall call)
        {
            var expected = _next < captured.Collectives.Count ? captured.Collectives[_next].Call : null;
            if (expected is null || !Same(expected, call))
                throw new TraceDivergenceException(captured.Rank, captured.StepKind, _next, expected, call);
            _next++;
            buffers.NextCollective();
        }

        public Tensor? ReceiveBuffer(long[] shape, ScalarType dtype) => buffers.Take(shape, dtype);

        public void Collective(CollectiveSample collective) { }

        public void End()
        {
            if (_next != captured.Collectives.Count)
                throw new TraceDivergenceException(captured.Rank, captured.StepKind, _next, captured.Collectives[_next].Call, null);
            Interlocked.Increment(ref trace._checkedSteps);
        }

        static bool Same(CollectiveCall a, CollectiveCall b) =>
            a.Group == b.Group && a.Op == b.Op && a.DType == b.DType && a.Shape.AsSpan().SequenceEqual(b.Shape);
    }
}
