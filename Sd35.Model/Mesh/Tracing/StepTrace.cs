using System.Diagnostics;

namespace Sd35.Mesh.Tracing;

/// <summary>One entry of a rank's captured step program: a collective with its bytes and when it ran.</summary>
public sealed record TracedCollective(CollectiveCall Call, long StartTimestamp, long EndTimestamp, long BytesSent, long BytesReceived);

/// <summary>A rank's step program as captured: every collective of one step in order, and the step's start and end.</summary>
public sealed record RankStepProgram(int Rank, string StepKind, long StartTimestamp, long EndTimestamp, IReadOnlyList<TracedCollective> Collectives);

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
/// step program — every collective in order with group, shape, dtype and bytes, and the time spent between them; every
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
        ICollectiveMonitor monitor = captured is null ? new Recorder(this, rank, stepKind) : new Checker(this, captured);
        return new TracedStep(monitor, CollectiveMonitor.Install(monitor));
    }

    /// <summary>A step being captured or checked on this rank thread.</summary>
    public sealed class TracedStep : IDisposable
    {
        readonly ICollectiveMonitor _monitor;
        readonly IDisposable _installed;
        bool _disposed;

        internal TracedStep(ICollectiveMonitor monitor, IDisposable installed) => (_monitor, _installed) = (monitor, installed);

        /// <summary>True when this step captures (the first of its kind on this rank), false when it is checked.</summary>
        public bool Capturing => _monitor is Recorder;

        public void Complete()
        {
            Dispose();
            ((IStepEnd)_monitor).End();
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _installed.Dispose();
        }
    }

    interface IStepEnd
    {
        void End();
    }

    sealed class Recorder(StepTrace trace, int rank, string kind) : ICollectiveMonitor, IStepEnd
    {
        readonly long _start = Stopwatch.GetTimestamp();
        readonly List<TracedCollective> _collectives = [];

        public void Before(CollectiveCall call) { }

        public void After(CollectiveCall call, long start, long end, long sent, long received) =>
            _collectives.Add(new TracedCollective(call, start, end, sent, received));

        public void End()
        {
            var program = new RankStepProgram(rank, kind, _start, Stopwatch.GetTimestamp(), _collectives.ToArray());
            lock (trace._gate) trace._captured.TryAdd((rank, kind), program);
        }
    }

    sealed class Checker(StepTrace trace, RankStepProgram captured) : ICollectiveMonitor, IStepEnd
    {
        int _next;

        public void Before(CollectiveCall call)
        {
            var expected = _next < captured.Collectives.Count ? captured.Collectives[_next].Call : null;
            if (expected is null || !Same(expected, call))
                throw new TraceDivergenceException(captured.Rank, captured.StepKind, _next, expected, call);
            _next++;
        }

        public void After(CollectiveCall call, long start, long end, long sent, long received) { }

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
