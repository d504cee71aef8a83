using System.Runtime.ExceptionServices;
using static TorchSharp.torch;

namespace Sd35.Mesh.InProcess;

/// <summary>
/// The in-process <see cref="IMeshLauncher"/>: one program per logical device, each on its own thread, with
/// in-process collectives between them — the single-machine stand-in for launching one process per accelerator.
/// A 1×1 mesh runs inline on the calling thread (no thread), so one device is simply the smallest mesh; every run,
/// inline or not, computes with the intra-op threads <see cref="IntraOpThreads"/> gives its ranks, the rule the MPI
/// launcher follows too. If a rank throws, the others are released from their collectives and the run rethrows that
/// first, original exception (with its stack trace). A session's runs share one communicator, so its groups (and the
/// models that hold them) serve every run.
/// </summary>
public sealed class InProcessLauncher : IMeshLauncher
{
    readonly Func<DeviceId, Device> _bind;
    readonly MeshRunOptions _options;

    /// <summary>Binds ranks to <paramref name="device"/> devices now (fails here if CUDA is asked for but unavailable).</summary>
    public InProcessLauncher(ComputeDevice device = ComputeDevice.Cpu, MeshRunOptions? options = null)
    {
        _bind = DeviceBinding.For(device);
        _options = options ?? MeshRunOptions.Default;
    }

    public IMeshSession Open(MeshShape shape) => new Session(DeviceMesh.Create(shape, _bind), _options);

    /// <summary>Runs once on every device of <paramref name="mesh"/> (which may be a submesh of a larger one: its devices keep their ids).</summary>
    public static MeshRunResult<T> Run<T>(DeviceMesh mesh, Func<MeshRank, T> program, MeshRunOptions? options = null)
    {
        using var session = Open(mesh, options);
        return session.Run(program);
    }

    /// <summary>A session on <paramref name="mesh"/>: one communicator, so the same groups, for all its runs.</summary>
    public static IMeshSession Open(DeviceMesh mesh, MeshRunOptions? options = null) => new Session(mesh, options ?? MeshRunOptions.Default);

    /// <summary>
    /// The mesh's communicator, kept for the session: a run starts by clearing what the last one left (a failed one
    /// included), and runs take turns, since they share the groups.
    /// </summary>
    sealed class Session(DeviceMesh mesh, MeshRunOptions options) : IMeshSession
    {
        readonly InProcessCommunicator _communicator = new(mesh, options.CollectiveTimeout);
        readonly object _turn = new();

        public MeshShape Shape => mesh.Shape;

        public MeshRunResult<T> Run<T>(Func<MeshRank, T> program)
        {
            lock (_turn)
            {
                _communicator.BeginRun();
                return RunOnce(mesh, _communicator, program, options);
            }
        }

        public void Dispose()
        {
        }
    }

    static MeshRunResult<T> RunOnce<T>(DeviceMesh mesh, InProcessCommunicator communicator, Func<MeshRank, T> program, MeshRunOptions options)
    {
        var results = new T[mesh.Size];
        var programs = mesh.Devices.Select((device, index) => (Action)(() =>
        {
            try
            {
                results[index] = program(new MeshRank(mesh, device.Id, communicator, communicator.Aborted));
            }
            catch (Exception ex)
            {
                ex.Data[MeshFailure.RankKey] = device.Id.Value;
                communicator.Abort(ex);
            }
            finally
            {
                communicator.MarkFinished(device.Id);
            }
        })).ToArray();

        using (IntraOpThreads.Enter(IntraOpThreads.PerRank(mesh.Size, options)))
        {
            if (programs.Length == 1) programs[0]();
            else RunOnThreads(mesh, programs);
        }
        if (communicator.Cause is { } cause) ExceptionDispatchInfo.Capture(cause).Throw();
        return new MeshRunResult<T>(mesh.Devices.Select((d, i) => (d.Id, results[i])).ToDictionary(p => p.Id, p => p.Item2), communicator);
    }

    static void RunOnThreads(DeviceMesh mesh, Action[] programs)
    {
        var threads = programs.Select((program, index) => new Thread(() => program())
        {
            Name = $"mesh rank {mesh.Devices[index].Id}",
            IsBackground = true, // a rank stuck outside any collective must not keep the process alive
        }).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
    }
}

/// <summary>Shorthands over <see cref="InProcessLauncher"/> for tests and tools that hold every rank in-process.</summary>
public static class MeshRunner
{
    /// <summary>Every rank's result, in the mesh's row-major order.</summary>
    public static T[] Run<T>(DeviceMesh mesh, Func<MeshRank, T> program, MeshRunOptions? options = null) =>
        InProcessLauncher.Run(mesh, program, options).Results.ToArray();

    /// <summary>Runs on every device of <paramref name="config"/>'s mesh, each rank already placed (<see cref="MeshRank.Place"/>).</summary>
    public static T[] Run<T>(ParallelConfig config, Func<MeshRank, T> program, MeshRunOptions? options = null) =>
        Execute(config, program, options).Results.ToArray();

    public static MeshRunResult<T> Execute<T>(ParallelConfig config, Func<MeshRank, T> program, MeshRunOptions? options = null) =>
        InProcessLauncher.Run(DeviceMesh.Create(config.Mesh), rank => program(rank.Place(config)), options);

    public static MeshRunResult<T> Execute<T>(DeviceMesh mesh, Func<MeshRank, T> program, MeshRunOptions? options = null) =>
        InProcessLauncher.Run(mesh, program, options);
}
