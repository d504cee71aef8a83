using System.Diagnostics;
using static TorchSharp.torch;

namespace Sd35.Profiling;

/// <summary>One collective as a rank issues it: its group, op, this rank's tensor shape and dtype.</summary>
public sealed record CollectiveCall(string Group, string Op, long[] Shape, string DType)
{
    public string ShapeText => $"[{string.Join(", ", Shape)}]";
    public override string ToString() => $"{Group} {Op} {ShapeText} {DType}";
}

/// <summary>
/// One compute op as the kernels report it: what it is, its work (FLOPs, and the bytes an unfused kernel reads and
/// writes), its output and inputs (live only during the call: a sink that keeps shapes copies them), and the Stopwatch
/// timestamps around it. <see cref="StartTimestamp"/> is <see cref="Instrumentation.Unknown"/> for an op counted after the
/// fact by code that computed it by other means and did not take its start (an element-wise residual, a distributed layer
/// norm whose all-reduces are collectives of their own): its span then starts where the
/// rank's previous event ended.
/// </summary>
public readonly record struct OpSample(
    string Section, OpKind Kind, string Name, double Flops, long BytesRead, long BytesWritten,
    Tensor Output, Tensor?[] Inputs, long StartTimestamp, long EndTimestamp);

/// <summary>
/// One collective a rank took part in: the call, the group's members (device ids in rank order), the bytes of this
/// rank's own input (the message), what it sent and received, whether it was posted asynchronously (a ring step that a
/// real backend overlaps with compute), and the timestamps from posting to completion.
/// </summary>
public sealed record CollectiveSample(
    string Section, CollectiveCall Call, IReadOnlyList<int> Members, long MessageBytes, long BytesSent, long BytesReceived, bool Async,
    long StartTimestamp, long EndTimestamp);

/// <summary>
/// Sees what one rank computes and communicates, in program order: every compute op the kernels report and every
/// collective, before it is joined (so a checker can stop a divergent rank before its peers wait on it) and once done.
/// The cost model's OpRecorder (in Sd35.Tools) and the step trace (<see cref="Sd35.Mesh.Tracing.StepTrace"/>) are sinks.
/// </summary>
public interface IInstrumentationSink
{
    void Op(in OpSample op);
    void BeforeCollective(CollectiveCall call);
    void Collective(CollectiveSample collective);
}

/// <summary>
/// A sink that keeps the buffers collectives receive into, so that a backend which needs receive buffers (MPI stages
/// every message through host memory) places each one once instead of allocating it on every call: the step trace keeps
/// one set per captured step program, placed during the capture and reused by every later step of that kind.
/// </summary>
interface IReceiveBufferSource
{
    /// <summary>
    /// A CPU tensor of exactly <paramref name="shape"/> and <paramref name="dtype"/> for the next part received by the
    /// collective begun last on this thread (a new handle that the caller owns, as if it were new; its storage is kept),
    /// or null when this sink keeps none.
    /// </summary>
    Tensor? ReceiveBuffer(long[] shape, ScalarType dtype);
}

/// <summary>
/// The one instrumentation hook: a sink per thread (each rank runs on its own thread in-process, in its own process
/// under MPI), installed around the part of a rank program to watch. The kernels (<see cref="Sd35.Layers.Kernels"/>) and
/// both collective backends report to it; with no sink installed every hook costs one thread-static read. Two sinks
/// installed on one thread (a traced step inside a cost-model dry run) both see everything.
/// Sections (clip_encoding, t5_encoding, denoising_step, …) are per thread as well and stamped on every sample.
/// </summary>
public static class Instrumentation
{
    /// <summary>The start of an op whose start was not observed (see <see cref="OpSample"/>).</summary>
    public const long Unknown = -1;

    [ThreadStatic] static IInstrumentationSink? s_sink;
    [ThreadStatic] static Stack<string>? s_sections;

    public static bool IsOn => s_sink is not null;

    /// <summary>The innermost open section on this thread ("" outside any).</summary>
    public static string Section => s_sections is { Count: > 0 } sections ? sections.Peek() : "";

    /// <summary>Installs <paramref name="sink"/> on the calling thread (beside any sink already there) until the result is disposed.</summary>
    public static IDisposable Install(IInstrumentationSink sink)
    {
        var previous = s_sink;
        s_sink = previous is null ? sink : new Both(previous, sink);
        return new Restore(() => s_sink = previous);
    }

    /// <summary>
    /// Stamps everything reported on this thread until disposal with section <paramref name="name"/>. Kept whether or
    /// not a sink is installed yet (a traced step installs its sink inside the step's section); sections are coarse
    /// (a stage, a step), so this costs nothing measurable.
    /// </summary>
    public static IDisposable InSection(string name)
    {
        var sections = s_sections ??= new Stack<string>();
        sections.Push(name);
        return new Restore(() => sections.Pop());
    }

    /// <summary>
    /// <see cref="InSection(string)"/> that also times the span: when it closes, <paramref name="record"/> (if any) gets its
    /// wall-clock seconds, so a span stamped for the recorders and timed for the reports is one span, not two.
    /// </summary>
    public static IDisposable InSection(string name, Action<double>? record)
    {
        if (record is null) return InSection(name);
        var section = InSection(name);
        long start = Stopwatch.GetTimestamp();
        return new Restore(() =>
        {
            section.Dispose();
            record(Stopwatch.GetElapsedTime(start).TotalSeconds);
        });
    }

    /// <summary>Now, when a sink watches (an op's start); 0 otherwise, so an unwatched op does not read the clock.</summary>
    public static long Timestamp() => s_sink is null ? 0 : Stopwatch.GetTimestamp();

    /// <summary>Reports a compute op that ended now; <paramref name="start"/> from <see cref="Timestamp"/>, or <see cref="Unknown"/>.</summary>
    public static void Op(OpKind kind, string name, double flops, long bytesRead, long bytesWritten, long start, Tensor output, params Tensor?[] inputs)
    {
        s_sink?.Op(new OpSample(Section, kind, name, flops, bytesRead, bytesWritten, output, inputs, start, Stopwatch.GetTimestamp()));
    }

    /// <summary>
    /// Opens a collective on this thread: tells the sink before the rank joins it, and returns the probe whose
    /// <see cref="CollectiveProbe.End"/> reports it done. Costs nothing but the check when no sink is installed.
    /// </summary>
    public static CollectiveProbe BeginCollective(string group, string op, long[] shape, string dtype)
    {
        var sink = s_sink;
        if (sink is null) return default;
        var call = new CollectiveCall(group, op, shape, dtype);
        sink.BeforeCollective(call);
        return new CollectiveProbe(call, Stopwatch.GetTimestamp());
    }

    /// <summary>
    /// Where the collective begun last on this thread receives its next part: a kept buffer when the sink keeps them
    /// (<see cref="IReceiveBufferSource"/>), else a new CPU tensor. Its contents are undefined: the backend overwrites it.
    /// </summary>
    public static Tensor ReceiveBuffer(long[] shape, ScalarType dtype) =>
        (s_sink as IReceiveBufferSource)?.ReceiveBuffer(shape, dtype) ?? empty(shape, dtype);

    /// <summary>A collective begun by <see cref="BeginCollective"/>; the default value (no sink) reports nothing.</summary>
    public readonly struct CollectiveProbe
    {
        readonly CollectiveCall? _call;
        readonly long _start;

        internal CollectiveProbe(CollectiveCall call, long start) => (_call, _start) = (call, start);

        /// <summary>Reports the collective done, on the thread that began it (the rank's own thread).</summary>
        public void End(IReadOnlyList<int> members, long messageBytes, long sent, long received, bool isAsync)
        {
            if (_call is null) return;
            s_sink?.Collective(new CollectiveSample(Section, _call, members, messageBytes, sent, received, isAsync, _start, Stopwatch.GetTimestamp()));
        }
    }

    /// <summary>Two sinks on one thread, each told everything (the older one first); receive buffers come from the first that keeps them.</summary>
    sealed class Both(IInstrumentationSink first, IInstrumentationSink second) : IInstrumentationSink, IReceiveBufferSource
    {
        public Tensor? ReceiveBuffer(long[] shape, ScalarType dtype) =>
            (first as IReceiveBufferSource)?.ReceiveBuffer(shape, dtype) ?? (second as IReceiveBufferSource)?.ReceiveBuffer(shape, dtype);

        public void Op(in OpSample op)
        {
            first.Op(op);
            second.Op(op);
        }

        public void BeforeCollective(CollectiveCall call)
        {
            first.BeforeCollective(call);
            second.BeforeCollective(call);
        }

        public void Collective(CollectiveSample collective)
        {
            first.Collective(collective);
            second.Collective(collective);
        }
    }

    sealed class Restore(Action undo) : IDisposable
    {
        Action? _undo = undo;
        public void Dispose() => Interlocked.Exchange(ref _undo, null)?.Invoke();
    }
}
