using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Mesh.Mpi;

/// <summary>What an MPI rank process does beyond the launcher-neutral <see cref="MeshRunOptions"/>.</summary>
public sealed record MpiRunOptions
{
    /// <summary>Exchange and compare every collective's description first (<see cref="MpiCommunicator.CheckCalls"/>); default from <c>SD35_MPI_CHECK</c>.</summary>
    public bool CheckCalls { get; init; } = MpiCommunicator.CheckCallsFromEnvironment;

    /// <summary>
    /// Prints a failure of this process's rank (given its device id) and returns the exit code the whole job ends
    /// with. The default prints the exception with the device id; a command line maps its own errors to messages.
    /// </summary>
    public Func<DeviceId, Exception, int> ReportFailure { get; init; } = (device, error) =>
    {
        Console.Error.WriteLine($"rank {device} failed: {error}");
        return 1;
    };

    /// <summary>
    /// A parallel config whose sp, tp and cfg communicators are split up front (MPI_Comm_split, all processes at
    /// once) when the launcher makes its communicator; other groups are made on first use.
    /// </summary>
    public ParallelConfig? Config { get; init; }

    /// <summary>Where the device-0 process prints which process runs which rank, once per job (see <see cref="MpiCommunicator.ProcessMap"/>); null: not at all.</summary>
    public Action<string>? Announce { get; init; } = line => Console.Error.WriteLine(line);

    public static MpiRunOptions Default { get; } = new();
}

/// <summary>
/// The MPI <see cref="IMeshLauncher"/>: this process is one rank of a job started by an MPI launcher
/// (<c>mpirun -np N</c>, one process per device, device id = MPI world rank) and runs the program for that rank
/// only; the result holds that one rank's result and traffic. A rank that throws has its error reported once, here,
/// and ends the whole job with MPI_Abort: the launcher then kills every other process, so none waits in a collective
/// for it and none prints a consequential error of its own. The call does not return in that case. An
/// <see cref="AgreedStopException"/> (every rank stops at the same point, e.g. a cancelled generation) is no failure: it
/// reaches the caller and the job goes on; so does any <see cref="IRaisedByEveryRank"/> error raised by every rank alike
/// (NaN latents after a step).
/// </summary>
public sealed class MpiLauncher : IMeshLauncher
{
    readonly Func<DeviceId, Device> _bind;
    readonly MeshRunOptions _options;
    readonly MpiRunOptions _mpi;
    readonly Dictionary<MeshShape, MpiCommunicator> _communicators = new();

    /// <summary>Checks the job against the devices now, so a wrong process count fails before any work.</summary>
    public MpiLauncher(ComputeDevice device = ComputeDevice.Cpu, MeshRunOptions? options = null, MpiRunOptions? mpi = null)
    {
        _mpi = mpi ?? MpiRunOptions.Default;
        if (_mpi.Config is { } config) CheckProcessCount(config.DeviceCount);
        _bind = BindLocal(device);
        _options = options ?? MeshRunOptions.Default;
    }

    /// <summary>
    /// A session on the shape's communicator, which this launcher makes once per shape (every process at its first
    /// open) and keeps for the life of the process: disposing a session leaves it, and its groups, in place.
    /// </summary>
    public IMeshSession Open(MeshShape shape) => new Session(this, shape);

    sealed class Session(MpiLauncher launcher, MeshShape shape) : IMeshSession
    {
        public MeshShape Shape => shape;
        public MeshRunResult<T> Run<T>(Func<MeshRank, T> program) => launcher.RunRank(shape, program);

        public void Dispose()
        {
        }
    }

    MeshRunResult<T> RunRank<T>(MeshShape shape, Func<MeshRank, T> program)
    {
        DeviceId device = MpiRuntime.LaunchedRank()?.Rank ?? -1;
        try
        {
            CheckProcessCount(shape.Size);
            var communicator = CommunicatorFor(shape);
            device = communicator.Self;
            var mesh = communicator.Mesh;
            // The in-process launcher's rule, with the rank processes of this host as the ranks sharing its cores.
            using (IntraOpThreads.Enter(IntraOpThreads.PerRank(LocalRanks(), _options)))
            {
                var result = program(new MeshRank(mesh, device, communicator, CancellationToken.None));
                return new MeshRunResult<T>(new Dictionary<DeviceId, T> { [device] = result }, communicator);
            }
        }
        // Every rank stops at the same point by agreement: no rank is left in a collective, the job goes on.
        catch (Exception error) when (error is not IRaisedByEveryRank { ByEveryRank: true })
        {
            int code = _mpi.ReportFailure(device, error);
            MpiRuntime.Abort(code == 0 ? 1 : code);
            throw; // not reached: the job has ended
        }
    }

    /// <summary>One communicator (and its cached sub-communicators) per mesh shape, made by every process at its first run.</summary>
    MpiCommunicator CommunicatorFor(MeshShape shape)
    {
        if (_communicators.TryGetValue(shape, out var existing)) return existing;
        var communicator = new MpiCommunicator(DeviceMesh.Create(shape, _bind), _mpi.CheckCalls);
        if (_mpi.Config is { } config && config.Mesh == shape) communicator.Prepare(config);
        if (_communicators.Count == 0)
        {
            var map = communicator.ProcessMap();
            if (communicator.Self == communicator.Mesh.Devices[0].Id)
                _mpi.Announce?.Invoke($"MPI job of {shape.Size} processes, one per device: {string.Join(", ", map.Select(p => $"rank {p.Device}: pid {p.Pid} on {p.Host}"))}");
        }
        return _communicators[shape] = communicator;
    }

    /// <summary>The launcher must have started exactly one process per device; the error says how to start the job.</summary>
    public static void CheckProcessCount(int devices)
    {
        int processes = MpiRuntime.LaunchedRank()?.Size ?? MpiRuntime.WorldSize;
        if (processes != devices)
            throw new MeshLaunchException(
                $"the parallel config has {devices} device(s) but the MPI launcher started {processes} process(es); start one process per device: mpirun -np {devices} ...");
    }

    /// <summary>
    /// CUDA ranks take the GPUs of their own host in turn (by the launcher's local rank), not by world rank, so a
    /// job spread over hosts binds each process to a GPU it can see.
    /// </summary>
    static Func<DeviceId, Device> BindLocal(ComputeDevice device)
    {
        var bind = DeviceBinding.For(device);
        int? local = LocalRank();
        return device == ComputeDevice.Cpu || local is null ? bind : _ => bind(local.Value);
    }

    static int? LocalRank() => ReadInt("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK");

    /// <summary>How many rank processes of the job run on this host (they share its cores).</summary>
    static int LocalRanks() => ReadInt("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE") ?? 1;

    static int? ReadInt(params string[] names) =>
        names.Select(Environment.GetEnvironmentVariable).Select(v => int.TryParse(v, out int n) ? (int?)n : null).FirstOrDefault(n => n is not null);
}

/// <summary>The MPI job does not fit the run (process count against device count); the message says how to start it.</summary>
public sealed class MeshLaunchException(string message) : Sd35.Errors.InputException(message);
