using static TorchSharp.torch;

namespace Sd35.Mesh;

/// <summary>
/// libtorch's intra-op thread count for a mesh run: one rule for every launcher, so that a rank computes with the same
/// threads — and, since a GEMM or a reduction splits its work by thread count, gives the same bits — whichever launcher
/// runs it: one device in this process and one device as the only process of <c>mpirun -np 1</c> compute alike, and so
/// do the ranks of an in-process mesh and of an MPI job on one host. Every run sets the count, one device's too: a
/// process that never set it computes with libtorch's own default, which is not the same in every process (it comes
/// from the OpenMP/oneMKL runtime and what the process did before: on this 2-core machine a one-device run found 2
/// threads in the test host and 1 in a process started by <c>mpirun -np 1</c>), so leaving it alone made the image
/// depend on the launcher. The cores are counted as .NET counts them (<see cref="Environment.ProcessorCount"/>: the
/// CPUs this process may use), which every process on a host agrees on.
/// </summary>
public static class IntraOpThreads
{
    static readonly object Gate = new();
    static int s_activeRuns;
    static int s_savedThreads;

    /// <summary>
    /// ⌈<paramref name="cores"/> / <paramref name="ranksOnThisHost"/>⌉, at least 1: the ranks that share a host's cores
    /// use about one thread per core together, instead of ranks × cores.
    /// </summary>
    public static int PerRank(int ranksOnThisHost, int cores) =>
        Math.Max(1, (cores + Math.Max(1, ranksOnThisHost) - 1) / Math.Max(1, ranksOnThisHost));

    /// <summary>The run's count: <see cref="MeshRunOptions.IntraOpThreads"/> where given, otherwise <see cref="PerRank(int, int)"/> of this host's cores.</summary>
    public static int PerRank(int ranksOnThisHost, MeshRunOptions options) =>
        options.IntraOpThreads ?? PerRank(ranksOnThisHost, Environment.ProcessorCount);

    /// <summary>
    /// Sets the count for a run until the returned scope is disposed. The setting is process-global, so of overlapping
    /// runs the first sets it and the last restores what was there before. Rank threads are new threads, and libtorch
    /// gives a thread the current setting at its first parallel op; a run inline on the calling thread gets it at once.
    /// </summary>
    public static IDisposable Enter(int threads)
    {
        lock (Gate)
        {
            if (s_activeRuns++ == 0)
            {
                s_savedThreads = get_num_threads();
                set_num_threads(threads);
            }
        }
        return new Scope();
    }

    sealed class Scope : IDisposable
    {
        int _left;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _left, 1) != 0) return;
            lock (Gate)
            {
                if (--s_activeRuns == 0) set_num_threads(s_savedThreads);
            }
        }
    }
}
