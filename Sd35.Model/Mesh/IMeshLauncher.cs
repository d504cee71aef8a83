namespace Sd35.Mesh;

/// <summary>
/// Starts rank programs: the one seam a multi-process backend replaces. A launcher opens a mesh session, which runs
/// <c>program</c> on every rank of the mesh that it hosts — all of them for the in-process launcher (one thread each,
/// or inline on the calling thread for a 1×1 mesh), exactly one for an MPI launcher (one rank per process) — binds each
/// rank to its TorchSharp device, and returns only the hosted ranks' results. Code above it (the pipeline) must not
/// assume it sees every rank's result: what every process needs is exchanged inside the program by collectives.
/// </summary>
public interface IMeshLauncher
{
    /// <summary>
    /// A session on a <paramref name="shape"/> mesh: its process groups are made once and serve every run on it, so
    /// models kept between runs (a resident pipeline's) hold the groups they run with. Dispose it when its models are gone.
    /// </summary>
    IMeshSession Open(MeshShape shape);
}

/// <summary>A mesh whose process groups live from <see cref="IMeshLauncher.Open"/> until disposed; its runs take turns.</summary>
public interface IMeshSession : IDisposable
{
    MeshShape Shape { get; }

    /// <summary>Runs <paramref name="program"/> on the ranks hosted here; a rank that throws fails the run with its exception.</summary>
    MeshRunResult<T> Run<T>(Func<MeshRank, T> program);
}

public static class MeshLauncherExtensions
{
    /// <summary>One run on a session of its own (groups made for this run only).</summary>
    public static MeshRunResult<T> Run<T>(this IMeshLauncher launcher, MeshShape shape, Func<MeshRank, T> program)
    {
        using var session = launcher.Open(shape);
        return session.Run(program);
    }
}

/// <summary>How a mesh run behaves, whatever the backend.</summary>
public sealed record MeshRunOptions
{
    /// <summary>How long a collective waits for the other ranks before the run fails (the last resort against a hang).</summary>
    public TimeSpan CollectiveTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>
    /// TorchSharp intra-op threads during the run (process-global; restored afterwards). Null: ⌈cores / local ranks⌉,
    /// so the rank threads together use about one thread per core instead of ranks × cores.
    /// </summary>
    public int? IntraOpThreads { get; init; }

    public static MeshRunOptions Default { get; } = new();
}

/// <summary>The results of the ranks a launcher hosts, by device id, and the traffic those ranks had in the session so far.</summary>
public sealed class MeshRunResult<T>(IReadOnlyDictionary<DeviceId, T> local, ICommunicator communicator)
{
    /// <summary>Results of the ranks hosted by this launcher (every rank in-process; this process's rank under MPI), by device id.</summary>
    public IReadOnlyDictionary<DeviceId, T> Local { get; } = local;

    /// <summary>The hosted ranks' results in device-id order.</summary>
    public IReadOnlyList<T> Results => Local.OrderBy(p => p.Key).Select(p => p.Value).ToArray();

    /// <summary>The traffic hosted device <paramref name="deviceId"/> had under <paramref name="label"/> (sp, tp, cfg, axis0, …).</summary>
    public CollectiveStats Traffic(DeviceId deviceId, string label) => communicator.Traffic(deviceId, label);

    /// <summary>Everything each hosted device moved, by device id.</summary>
    public IReadOnlyDictionary<DeviceId, IReadOnlyDictionary<string, CollectiveStats>> AllTraffic =>
        Local.Keys.ToDictionary(id => id, communicator.TrafficOf);
}

/// <summary>The launchers this project ships.</summary>
public static class MeshLaunchers
{
    /// <summary>All ranks in this process, on threads (inline for one rank), bound to <paramref name="device"/> devices.</summary>
    public static IMeshLauncher InProcess(ComputeDevice device = ComputeDevice.Cpu, MeshRunOptions? options = null) =>
        new InProcess.InProcessLauncher(device, options);
}
