namespace Sd35.Mesh.Mpi;

/// <summary>
/// The process's MPI library: whether this process was started by an MPI launcher, initialization (once, with
/// errors returned rather than fatal, so they surface as exceptions with MPI's text), its world rank and size, and
/// the two ways out: <see cref="Shutdown"/> after a clean run and <see cref="Abort"/> after a failure.
/// </summary>
public static class MpiRuntime
{
    static readonly object Gate = new();
    static bool s_initialized;
    static int s_rank, s_size;

    /// <summary>
    /// The world rank and size the launcher put into the environment, or null when this process was not started
    /// by one: MPICH's hydra sets <c>PMI_RANK</c>/<c>PMI_SIZE</c>, Open MPI <c>OMPI_COMM_WORLD_RANK</c>/<c>_SIZE</c>,
    /// PMIx launchers (Slurm's srun) <c>PMIX_RANK</c> with <c>SLURM_NTASKS</c>.
    /// </summary>
    public static (int Rank, int Size)? LaunchedRank()
    {
        static int? Read(string name) => int.TryParse(Environment.GetEnvironmentVariable(name), out int v) ? v : null;
        foreach (var (rank, size) in new[] { ("PMI_RANK", "PMI_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMIX_RANK", "SLURM_NTASKS") })
            if (Read(rank) is int r && Read(size) is int s) return (r, s);
        return null;
    }

    /// <summary>True when an MPI launcher started this process with more than one rank.</summary>
    public static bool IsLaunched => LaunchedRank() is { Size: > 1 };

    /// <summary>Whether the MPICH library can be loaded (tests skip, and the demo explains, when it cannot).</summary>
    public static bool IsLibraryAvailable => MpiNative.IsAvailable();

    /// <summary>
    /// Why this machine cannot start jobs for this backend, or null when it can: MPICH's library must load and
    /// <c>mpirun</c> must be MPICH's hydra (the bindings use MPICH's ABI). Tests that start jobs skip with this reason.
    /// </summary>
    public static string? WhyJobsCannotStart()
    {
        if (!IsLibraryAvailable) return "MPICH is not installed (apt-get install -y mpich)";
        try
        {
            using var version = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("mpirun", "--version") { RedirectStandardOutput = true, RedirectStandardError = true })!;
            string text = version.StandardOutput.ReadToEnd();
            version.WaitForExit();
            return text.Contains("HYDRA") ? null : "mpirun is not MPICH's hydra (the MPI backend binds MPICH's ABI)";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "mpirun is not on the PATH (apt-get install -y mpich)";
        }
    }

    /// <summary>Initializes MPI once per process (thread level: serialized, one rank program per process).</summary>
    public static void EnsureInitialized()
    {
        lock (Gate)
        {
            if (s_initialized) return;
            MpiNative.Check(MpiNative.Initialized(out int already), "MPI_Initialized");
            if (already == 0)
            {
                PmiRelay.StartIfLaunchedByHydra();
                MpiNative.Check(MpiNative.InitThread(0, 0, MpiNative.ThreadSerialized, out int provided), "MPI_Init_thread");
                if (provided < MpiNative.ThreadSerialized)
                    throw new MpiException("MPI_Init_thread", 0, $"the MPI library gives thread level {provided}, the backend needs MPI_THREAD_SERIALIZED ({MpiNative.ThreadSerialized})");
            }
            MpiNative.Check(MpiNative.CommSetErrhandler(MpiNative.CommWorld, MpiNative.ErrorsReturn), "MPI_Comm_set_errhandler");
            MpiNative.Check(MpiNative.CommRank(MpiNative.CommWorld, out s_rank), "MPI_Comm_rank");
            MpiNative.Check(MpiNative.CommSize(MpiNative.CommWorld, out s_size), "MPI_Comm_size");
            s_initialized = true;
            // A clean exit ends MPI properly (a failure ends the job through Abort before this runs).
            AppDomain.CurrentDomain.ProcessExit += (_, _) => Shutdown();
        }
    }

    public static int WorldRank { get { EnsureInitialized(); return s_rank; } }
    public static int WorldSize { get { EnsureInitialized(); return s_size; } }

    /// <summary>Ends MPI after a clean run (every rank must call it). Safe to call twice or without initialization.</summary>
    public static void Shutdown()
    {
        lock (Gate)
        {
            if (!s_initialized) return;
            if (MpiNative.Finalized(out int done) == MpiNative.Success && done == 0)
            {
                PmiRelay.Current?.EnterFinalize();
                MpiNative.Finalize();
            }
            s_initialized = false;
        }
    }

    /// <summary>
    /// Ends the whole job: the launcher kills every process of it, so ranks blocked in collectives do not hang.
    /// Call it after the error has been printed; it does not return.
    /// </summary>
    public static void Abort(int exitCode)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        // The launcher forwards our output through a pipe and stops reading when it kills the job: give it a moment
        // to pass the error on before the abort.
        Thread.Sleep(TimeSpan.FromMilliseconds(500));
        if (s_initialized) MpiNative.Abort(MpiNative.CommWorld, exitCode);
        Environment.Exit(exitCode);
    }
}
