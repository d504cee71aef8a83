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
/// Thread-safe: every rank thread records into its own program.
/// </summary>
public sealed class StepTrace
{
    readonly object _gate = new();
    readonly Dictionary<(int Rank, string Kind), RankStepProgram> _captured = new();
    long _checkedSteps;

    /// <summary>The captured programs, by rank and step kind.</summary>
    public IReadOnlyList<RankStepProgram> Captured
    {
        get { lock (_gate) return _captured.Values.OrderBy(p => p.StepKind, StringComparer.Ordinal).ThenBy(p => p.Rank).ToArray(); }
    }

    /// <summary>How many rank-steps were checked against a capture (and followed it).</summary>
    public long CheckedSteps => Interlocked.Read(ref _checkedSteps);

    /// <summary>
    /// Begins a traced step on the calling rank thread: captures if this rank has no program of this kind yet, else
    /// checks against it. Call <see cref="TracedStep.Complete"/> when the step finished normally (a capture is kept, a
    /// check fails if the step issued fewer collectives than captured); disposing without it (an exception is
    /// unwinding the step) only stops watching, so the original error is what the run reports.
    /// </summary>
    public TracedStep Step(int rank, string stepKind)
    {
        RankStepProgram? captured;
        lock (_gate) _captured.TryGetValue((rank, stepKind), out captured);
        IStepSink sink = captured is null ? new Recorder(this, rank, stepKind) : new Checker(this, captured);
        return new TracedStep(sink, Instrumentation.Install(sink));
    }

    /// <summary>A step being captured or checked on this rank thread.</summary>
    public sealed class TracedStep : IDisposable
    {
        readonly IStepSink _sink;
        readonly IDisposable _installed;
        bool _disposed;

        internal TracedStep(IStepSink sink, IDisposable installed) => (_sink, _installed) = (sink, installed);

        /// <summary>True when this step captures (the first of its kind on this rank), false when it is checked.</summary>
        public bool Capturing => _sink is Recorder;

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

    internal interface IStepSink : IInstrumentationSink
    {
        void End();
    }

    /// <summary>Captures: keeps every op (its shapes copied now, the tensors are the caller's) and collective in order.</summary>
    sealed class Recorder(StepTrace trace, int rank, string kind) : IStepSink
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

        public void BeforeCollective(CollectiveCall call) { }

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
    sealed class Checker(StepTrace trace, RankStepProgram captured) : IStepSink
    {
        int _next;

        public void Op(in OpSample op) { }

        public void BeforeCollective(CollectiveCall call)
        {
            var expected = _next < captured.Collectives.Count ? captured.Collectives[_next].Call : null;
            if (expected is null || !Same(expected, call))
                throw new TraceDivergenceException(captured.Rank, captured.StepKind, _next, expected, call);
            _next++;
        }

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
