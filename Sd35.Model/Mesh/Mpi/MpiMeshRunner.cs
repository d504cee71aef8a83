using static TorchSharp.torch;

namespace Sd35.Mesh.Mpi;

/// <summary>How a rank process behaves under MPI.</summary>
public sealed record MpiRunOptions
{
    /// <summary>Exchange and compare every collective's description first (<see cref="MpiCommunicator.CheckCalls"/>); default from <c>SD35_MPI_CHECK</c>.</summary>
    public bool CheckCalls { get; init; } = MpiCommunicator.CheckCallsFromEnvironment;

    /// <summary>
    /// Prints a failure of this rank and returns the exit code the whole job ends with. The default prints the
    /// exception with the rank's device id; a command line maps its own errors to messages and codes.
    /// </summary>
    public Func<int, Exception, int> ReportFailure { get; init; } = (device, error) =>
    {
        Console.Error.WriteLine($"rank {device} failed: {error}");
        return 1;
    };

    /// <summary>TorchSharp intra-op threads per process; null: the host's cores shared by the ranks on the host.</summary>
    public int? IntraOpThreads { get; init; }

    public static MpiRunOptions Default { get; } = new();
}

/// <summary>This process's result of an MPI run, and what its device moved.</summary>
public sealed record MpiRunResult<T>(int DeviceId, T Result, MpiCommunicator Communicator);

/// <summary>
/// Runs this process's rank of a mesh program under an MPI launcher (<c>mpirun -np N</c>, one process per device,
/// device id = world rank). A rank that throws has its error reported once, here, and then ends the whole job with
/// MPI_Abort: the launcher kills every other process, so none of them waits in a collective for it and none prints
/// its own consequential error. The program does not return in that case.
/// </summary>
public static class MpiMeshRunner
{
    public static MpiRunResult<T> Run<T>(ParallelConfig config, Func<MeshRank, ParallelRank, T> program, MpiRunOptions? options = null)
    {
        var mesh = DeviceMesh.Create(config.Mesh, _ => CPU);
        return Run(mesh, comm => comm.Prepare(config), rank => program(rank, rank.Place(config)), options);
    }

    public static MpiRunResult<T> Run<T>(DeviceMesh mesh, Func<MeshRank, T> program, MpiRunOptions? options = null) =>
        Run(mesh, _ => { }, program, options);

    static MpiRunResult<T> Run<T>(DeviceMesh mesh, Action<MpiCommunicator> prepare, Func<MeshRank, T> program, MpiRunOptions? options)
    {
        options ??= MpiRunOptions.Default;
        int device = -1;
        try
        {
            CheckProcessCount(mesh.Size);
            var communicator = new MpiCommunicator(mesh, options.CheckCalls);
            device = communicator.Self;
            set_num_threads(options.IntraOpThreads ?? ThreadsPerRank());
            prepare(communicator);
            var result = program(new MeshRank(mesh, device, communicator, CancellationToken.None));
            return new MpiRunResult<T>(device, result, communicator);
        }
        catch (Exception error)
        {
            int code = options.ReportFailure(device >= 0 ? device : MpiRuntime.LaunchedRank()?.Rank ?? -1, error);
            MpiRuntime.Abort(code == 0 ? 1 : code);
            throw; // not reached
        }
    }

    /// <summary>The launcher must have started exactly one process per device; says how to start it otherwise.</summary>
    public static void CheckProcessCount(int devices)
    {
        int processes = MpiRuntime.LaunchedRank()?.Size ?? MpiRuntime.WorldSize;
        if (processes != devices)
            throw new MeshLaunchException(
                $"the parallel config has {devices} devices but the MPI launcher started {processes} process(es); run it with 'mpirun -np {devices} ...'");
    }

    /// <summary>The cores of this host shared by the rank processes on it (hydra: MPI_LOCALNRANKS; Open MPI: OMPI_COMM_WORLD_LOCAL_SIZE).</summary>
    static int ThreadsPerRank()
    {
        int local = new[] { "MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE" }
            .Select(Environment.GetEnvironmentVariable).Select(v => int.TryParse(v, out int n) ? n : 0).FirstOrDefault(n => n > 0, 1);
        return Math.Max(1, Environment.ProcessorCount / local);
    }
}

/// <summary>The MPI job does not fit the run (process count against device count); the message says how to start it.</summary>
public sealed class MeshLaunchException(string message) : InvalidOperationException(message);
