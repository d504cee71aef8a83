namespace Sd35.Mesh;

/// <summary>Traffic of one collective kind: how often it ran and the bytes this device sent and received.</summary>
public readonly record struct CollectiveOpStats(long Count, long BytesSent, long BytesReceived)
{
    public static CollectiveOpStats operator +(CollectiveOpStats a, CollectiveOpStats b) =>
        new(a.Count + b.Count, a.BytesSent + b.BytesSent, a.BytesReceived + b.BytesReceived);
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

    public void Record(string op, long bytesSent, long bytesReceived)
    {
        lock (_gate)
            _byOp[op] = _byOp.GetValueOrDefault(op) + new CollectiveOpStats(1, bytesSent, bytesReceived);
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
