namespace Sd35.Mesh.Tracing;

/// <summary>One collective as a rank issues it: its group, op, this rank's tensor shape and dtype.</summary>
public sealed record CollectiveCall(string Group, string Op, long[] Shape, string DType)
{
    public string ShapeText => $"[{string.Join(", ", Shape)}]";
    public override string ToString() => $"{Group} {Op} {ShapeText} {DType}";
}

/// <summary>
/// Watches the collectives of the rank running on the current thread (every rank runs on its own thread in-process,
/// in its own process under MPI): <see cref="Before"/> runs before the rank joins the collective, so a checker can
/// stop a divergent rank before it reaches a collective its peers will never match (the usual cause of mesh hangs);
/// <see cref="After"/> runs once it completed, with the bytes moved and the Stopwatch timestamps around it.
/// </summary>
public interface ICollectiveMonitor
{
    void Before(CollectiveCall call);
    void After(CollectiveCall call, long startTimestamp, long endTimestamp, long bytesSent, long bytesReceived);
}

/// <summary>The monitor of the current rank thread, if any (set by the rank program around the part it traces).</summary>
public static class CollectiveMonitor
{
    [ThreadStatic] static ICollectiveMonitor? s_current;

    public static ICollectiveMonitor? Current => s_current;

    /// <summary>Installs <paramref name="monitor"/> on this thread until the returned handle is disposed.</summary>
    public static IDisposable Install(ICollectiveMonitor monitor)
    {
        var previous = s_current;
        s_current = monitor;
        return new Restore(previous);
    }

    sealed class Restore(ICollectiveMonitor? previous) : IDisposable
    {
        public void Dispose() => s_current = previous;
    }
}
