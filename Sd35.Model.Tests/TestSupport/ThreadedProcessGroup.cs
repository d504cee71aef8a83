using Sd35.Layers;
using Sd35.Mesh;
using static TorchSharp.torch;

namespace Sd35.Tests.TestSupport;

/// <summary>
/// A test-only process group whose ranks are threads of this process: each collective deposits every rank's
/// tensor, waits for all of them, and lets each rank build its own result from the deposits. Enough to check that
/// a sharded model computes what the single-device model computes, without a real backend.
/// </summary>
public sealed class ThreadedProcessGroup
{
    readonly Barrier _barrier;
    readonly Tensor?[] _deposits;

    public IReadOnlyList<IProcessGroup> Ranks { get; }

    public ThreadedProcessGroup(int size)
    {
        _barrier = new Barrier(size);
        _deposits = new Tensor?[size];
        Ranks = Enumerable.Range(0, size).Select(r => (IProcessGroup)new Member(this, r, size)).ToArray();
    }

    /// <summary>Runs <paramref name="body"/> once per rank, each on its own thread, and returns the results in rank order.</summary>
    public T[] Run<T>(Func<IProcessGroup, T> body)
    {
        var tasks = Ranks.Select(rank => Task.Factory.StartNew(() => body(rank), TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(tasks);
        return tasks.Select(t => t.Result).ToArray();
    }

    /// <summary>How long a rank waits for the others; a rank that failed never arrives, and the test should fail, not hang.</summary>
    static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    Tensor Exchange(int rank, Tensor local, Func<Tensor[], Tensor> combine)
    {
        _deposits[rank] = local;
        Wait(rank);
        var result = combine(_deposits!);
        Wait(rank); // nobody deposits the next collective's tensor before everyone has read this one
        return result;
    }

    void Wait(int rank)
    {
        if (!_barrier.SignalAndWait(Patience))
            throw new TimeoutException($"rank {rank} waited {Patience} for the other ranks at a collective; one of them failed or skipped it");
    }

    sealed class Member(ThreadedProcessGroup group, int rank, int size) : IProcessGroup
    {
        public int Rank => rank;
        public int Size => size;

        public Tensor AllGather(Tensor local, long dim) => group.Exchange(rank, local, all => cat(all, dim));

        public Tensor ReduceScatter(Tensor local, long dim) =>
            group.Exchange(rank, local, all => Sum(all).Then(s => s.chunk(size, dim)[rank].clone()));

        public Tensor AllReduce(Tensor local) => group.Exchange(rank, local, Sum);

        public Tensor AllToAll(Tensor local, long scatterDim, long gatherDim) =>
            group.Exchange(rank, local, all => cat(all.Select(t => t.chunk(size, scatterDim)[rank]).ToArray(), gatherDim));

        public Tensor RingShift(Tensor local) => group.Exchange(rank, local, all => all[(rank + size - 1) % size].clone());

        public Tensor Broadcast(Tensor local, int root) => group.Exchange(rank, local, all => all[root].clone());

        static Tensor Sum(Tensor[] all) => stack(all).sum(0);
    }
}
