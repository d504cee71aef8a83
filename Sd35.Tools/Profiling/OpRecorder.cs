using Sd35.Profiling;

namespace Sd35.Tools.Profiling;

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
/// Collects what one device's rank program computes and communicates, in order, for the cost model: an
/// <see cref="IInstrumentationSink"/> installed on the rank's thread (<see cref="Use"/>), so it sees exactly that rank's
/// work, from the kernels' compute hooks (<see cref="Sd35.Layers.Kernels"/>) and from the collectives.
/// </summary>
public sealed class OpRecorder(int deviceId) : IInstrumentationSink
{
    readonly List<OpEvent> _ops = [];
    readonly List<CollectiveEvent> _collectives = [];

    public int DeviceId { get; } = deviceId;

    public IReadOnlyList<OpEvent> Ops => _ops;
    public IReadOnlyList<CollectiveEvent> Collectives => _collectives;

    /// <summary>Installs this recorder on the calling thread until the result is disposed.</summary>
    public IDisposable Use() => Instrumentation.Install(this);

    void IInstrumentationSink.Op(in OpSample op) =>
        _ops.Add(new OpEvent(op.Section, op.Kind, op.Name, op.Flops, op.BytesRead, op.BytesWritten));

    void IInstrumentationSink.BeforeCollective(CollectiveCall call) { }

    void IInstrumentationSink.Collective(CollectiveSample c) =>
        _collectives.Add(new CollectiveEvent(c.Section, c.Call.Op, c.Call.Group, c.Members, c.MessageBytes, c.BytesSent, c.BytesReceived, c.Async));
}
