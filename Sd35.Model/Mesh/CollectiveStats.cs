namespace Sd35.Mesh;

/// <summary>Traffic of one collective kind: how often it ran and the bytes this device sent and received.</summary>
public readonly record struct CollectiveOpStats(long Count, long BytesSent, long BytesReceived)
{
    public static CollectiveOpStats operator +(CollectiveOpStats a, CollectiveOpStats b) =>
        new(a.Count + b.Count, a.BytesSent + b.BytesSent, a.BytesReceived + b.BytesReceived);
}

/// <summary>
/// One collective call as this device made it: its place in the device's program (a timestamp from
/// <see cref="System.Diagnostics.Stopwatch"/> taken when it completed), the op, this device's tensor shape and dtype,
/// and the bytes moved. The parallel-plan snapshots and the trace read these.
/// </summary>
public sealed record CollectiveEvent(long Timestamp, string Op, long[] Shape, string DType, long BytesSent, long BytesReceived)
{
    public string ShapeText => $"[{string.Join(", ", Shape)}]";
}

/// <summary>
/// What one device moved through one group (or several groups under one label), per collective kind, for the
/// cost model. Bytes are payload bytes that crossed to or from another device: what a bandwidth-optimal
/// algorithm moves (an AllGather of s bytes per rank over n ranks sends s·(n−1) from each), never the local copy.
/// </summary>
public sealed class CollectiveStats
{
    readonly object _gate = new();
    readonly Dictionary<string, CollectiveOpStats> _byOp = new();
    readonly List<CollectiveEvent> _events = [];

    public void Record(string op, long bytesSent, long bytesReceived)
    {
        lock (_gate)
            _byOp[op] = _byOp.GetValueOrDefault(op) + new CollectiveOpStats(1, bytesSent, bytesReceived);
    }

    /// <summary>Records the call and, in order, its shape and dtype (this device's tensor as it entered the collective).</summary>
    public void Record(string op, long bytesSent, long bytesReceived, long[] shape, string dtype)
    {
        lock (_gate)
        {
            _byOp[op] = _byOp.GetValueOrDefault(op) + new CollectiveOpStats(1, bytesSent, bytesReceived);
            _events.Add(new CollectiveEvent(System.Diagnostics.Stopwatch.GetTimestamp(), op, shape, dtype, bytesSent, bytesReceived));
        }
    }

    /// <summary>Every call recorded with its shape, in the order this device made them.</summary>
    public IReadOnlyList<CollectiveEvent> Events
    {
        get { lock (_gate) return _events.ToArray(); }
    }

    /// <summary>A snapshot, by op name (AllGather, ReduceScatter, AllReduce, AllToAll, SendReceive, Broadcast).</summary>
    public IReadOnlyDictionary<string, CollectiveOpStats> ByOp
    {
        get { lock (_gate) return new Dictionary<string, CollectiveOpStats>(_byOp); }
    }

    public CollectiveOpStats this[string op] { get { lock (_gate) return _byOp.GetValueOrDefault(op); } }

    public CollectiveOpStats Total
    {
        get { lock (_gate) return _byOp.Values.Aggregate(default(CollectiveOpStats), (a, b) => a + b); }
    }

    public override string ToString() =>
        string.Join("; ", ByOp.OrderBy(p => p.Key).Select(p => $"{p.Key} ×{p.Value.Count}: sent {p.Value.BytesSent} B, received {p.Value.BytesReceived} B"));
}
