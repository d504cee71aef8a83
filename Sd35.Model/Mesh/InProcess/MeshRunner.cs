using System.Runtime.ExceptionServices;
using static TorchSharp.torch;

namespace Sd35.Mesh.InProcess;

/// <summary>How a mesh run behaves.</summary>
public sealed record MeshRunOptions
{
    /// <summary>How long a collective waits for the other ranks before the run fails (the last resort against a hang).</summary>
    public TimeSpan CollectiveTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>
    /// TorchSharp intra-op threads during the run (process-global; restored afterwards). Null: ⌈cores / ranks⌉,
    /// so the rank threads together use about one thread per core instead of ranks × cores.
    /// </summary>
    public int? IntraOpThreads { get; init; }

    public static MeshRunOptions Default { get; } = new();
}

/// <summary>The per-rank results of a run, in the mesh's row-major order, and the traffic of every rank.</summary>
public sealed class MeshRunResult<T>(DeviceMesh mesh, IReadOnlyList<T> results, InProcessCommunicator communicator)
{
    public IReadOnlyList<T> Results { get; } = results;

    /// <summary>The traffic device <paramref name="deviceId"/> had under <paramref name="label"/> (sp, tp, cfg, axis0, …).</summary>
    public CollectiveStats Traffic(int deviceId, string label) => communicator.Traffic(deviceId, label);

    /// <summary>Everything each device moved, by device id.</summary>
    public IReadOnlyDictionary<int, IReadOnlyDictionary<string, CollectiveStats>> AllTraffic =>
        mesh.Devices.ToDictionary(d => d.Id, d => communicator.TrafficOf(d.Id));
}

/// <summary>
/// Runs one program per logical device, each on its own thread, with in-process collectives between them: the
/// single-machine stand-in for launching one process per accelerator. If a rank throws, the others are released
/// from their collectives and the run rethrows that first, original exception (with its stack trace).
/// </summary>
public static class MeshRunner
{
    static readonly object s_threadsGate = new();
    static int s_activeRuns;
    static int s_savedThreads;

    public static T[] Run<T>(DeviceMesh mesh, Func<MeshRank, T> program, MeshRunOptions? options = null) =>
        Execute(mesh, program, options).Results.ToArray();

    /// <summary>Runs on every device of <paramref name="config"/>'s mesh, each rank already placed (sp, tp and cfg groups made).</summary>
    public static T[] Run<T>(ParallelConfig config, Func<MeshRank, ParallelRank, T> program, MeshRunOptions? options = null) =>
        Execute(config, program, options).Results.ToArray();

    public static MeshRunResult<T> Execute<T>(ParallelConfig config, Func<MeshRank, ParallelRank, T> program, MeshRunOptions? options = null) =>
        Execute(DeviceMesh.Create(config.Mesh), rank => program(rank, rank.Place(config)), options);

    public static MeshRunResult<T> Execute<T>(DeviceMesh mesh, Func<MeshRank, T> program, MeshRunOptions? options = null)
    {
        options ??= MeshRunOptions.Default;
        var communicator = new InProcessCommunicator(mesh, options.CollectiveTimeout);
        var results = new T[mesh.Size];
        var threads = mesh.Devices.Select((device, index) => new Thread(() =>
        {
            try
            {
                results[index] = program(new MeshRank(mesh, device.Id, communicator, communicator.Aborted));
            }
            catch (Exception ex)
            {
                ex.Data["MeshRank"] = device.Id;
                communicator.Abort(ex);
            }
            finally
            {
                communicator.MarkFinished(device.Id);
            }
        })
        {
            Name = $"mesh rank {device.Id}",
            IsBackground = true, // a rank stuck outside any collective must not keep the process alive
        }).ToArray();

        int threadsPerRank = options.IntraOpThreads ?? Math.Max(1, (Environment.ProcessorCount + mesh.Size - 1) / mesh.Size);
        EnterThreads(threadsPerRank);
        try
        {
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
        }
        finally
        {
            LeaveThreads();
        }
        if (communicator.Cause is { } cause) ExceptionDispatchInfo.Capture(cause).Throw();
        return new MeshRunResult<T>(mesh, results, communicator);
    }

    // set_num_threads is process-global: the first of overlapping runs sets it, the last one restores it.
    // Rank threads are new threads, and libtorch gives a thread the current setting at its first parallel op.
    static void EnterThreads(int threads)
    {
        lock (s_threadsGate)
        {
            if (s_activeRuns++ == 0)
            {
                s_savedThreads = get_num_threads();
                set_num_threads(threads);
            }
        }
    }

    static void LeaveThreads()
    {
        lock (s_threadsGate)
        {
            if (--s_activeRuns == 0) set_num_threads(s_savedThreads);
        }
    }
}
