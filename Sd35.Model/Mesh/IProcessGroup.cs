using static TorchSharp.torch;
using Sd35.Profiling;

namespace Sd35.Mesh;

/// <summary>
/// One rank's handle on the group of devices along one mesh axis: the seam between the model code and
/// the wires. Model code only ever moves a tensor to another device through these collectives, so an
/// in-process backend, NCCL or MPI can sit behind it without the model changing.
/// Every call is collective: all ranks of the group must make it, in the same order.
/// </summary>
public interface IProcessGroup
{
    int Rank { get; }
    int Size { get; }

    /// <summary>Concatenates every rank's tensor along <paramref name="dim"/>, in rank order; every rank gets the result.</summary>
    Tensor AllGather(Tensor local, long dim);

    /// <summary>Sums the ranks' tensors and gives rank r the r-th equal chunk along <paramref name="dim"/>.</summary>
    Tensor ReduceScatter(Tensor local, long dim);

    /// <summary>Sums the ranks' tensors; every rank gets the sum.</summary>
    Tensor AllReduce(Tensor local);

    /// <summary>
    /// Splits the local tensor into Size chunks along <paramref name="scatterDim"/>, sends chunk j to rank j, and
    /// concatenates the received chunks along <paramref name="gatherDim"/> in rank order (the Ulysses exchange).
    /// </summary>
    Tensor AllToAll(Tensor local, long scatterDim, long gatherDim);

    /// <summary>Ring step: sends to rank (r + 1) mod Size and returns what rank (r − 1) mod Size sent.</summary>
    Tensor RingShift(Tensor local) => SendReceive(local, (Rank + 1) % Size, (Rank + Size - 1) % Size);

    /// <summary>Every rank gets rank <paramref name="root"/>'s tensor.</summary>
    Tensor Broadcast(Tensor local, int root);

    /// <summary>
    /// Point-to-point exchange made by every rank at once: sends <paramref name="local"/> to <paramref name="toRank"/>
    /// and returns what <paramref name="fromRank"/> sent. The sends must form a permutation (if r sends to t, t
    /// receives from r); shapes may differ per rank. <see cref="RingShift"/> is the case to = r + 1, from = r − 1.
    /// Every backend's exchange is <see cref="StartSendReceive"/> waited on at once.
    /// </summary>
    Tensor SendReceive(Tensor local, int toRank, int fromRank)
    {
        using var pending = StartSendReceive(local, toRank, fromRank);
        return pending.Wait();
    }

    /// <summary>
    /// <see cref="SendReceive"/> posted without waiting, so the caller can compute while the bytes move (ring
    /// attention sends the next K/V block while it attends to the current one). As with NCCL, <paramref name="local"/>
    /// must stay alive and unmodified until <see cref="IPendingTensor.Wait"/> returns; pending exchanges complete
    /// in the order they were posted, and later collectives may be issued before waiting.
    /// </summary>
    IPendingTensor StartSendReceive(Tensor local, int toRank, int fromRank);
}

/// <summary>A posted exchange. <see cref="Wait"/> returns the received tensor (owned by the caller) once.</summary>
public interface IPendingTensor : IDisposable
{
    Tensor Wait();
}

public static class ProcessGroupExtensions
{
    /// <summary>The asynchronous <see cref="IProcessGroup.RingShift"/>: send to the next rank, receive from the previous.</summary>
    public static IPendingTensor StartRingShift(this IProcessGroup group, Tensor local) =>
        group.StartSendReceive(local, (group.Rank + 1) % group.Size, (group.Rank + group.Size - 1) % group.Size);

    /// <summary>
    /// <see cref="IProcessGroup.Broadcast"/> of a tensor whose shape and dtype only the root knows (the others pass
    /// null): a fixed-size header goes first, so a backend that needs receive buffers (MPI, NCCL) can allocate
    /// them on <paramref name="device"/>. On a group of one it returns <paramref name="local"/> itself.
    /// </summary>
    public static Tensor BroadcastFromRoot(this IProcessGroup group, Tensor? local, int root, Device device)
    {
        bool isRoot = group.Rank == root;
        if (isRoot && local is null) throw new ArgumentNullException(nameof(local), $"rank {root} is the root of the broadcast and must pass its tensor");
        if (group.Size == 1) return local!;
        const int maxDims = 8;
        var header = new long[maxDims + 2];
        if (isRoot)
        {
            if (local!.dim() > maxDims) throw new ArgumentException($"BroadcastFromRoot takes at most {maxDims} dimensions, got {local.dim()}");
            header[0] = (long)local.dtype;
            header[1] = local.dim();
            for (int d = 0; d < local.dim(); d++) header[d + 2] = local.shape[d];
        }
        var h = group.BroadcastValues(header, root, ShapeOnly.MetadataDevice(device));
        if (isRoot) return group.Broadcast(local!, root);
        using var buffer = empty(h.Skip(2).Take((int)h[1]).ToArray(), (ScalarType)h[0], device);
        return group.Broadcast(buffer, root);
    }

    /// <summary>
    /// Broadcasts a few int64 values from <paramref name="root"/> (every rank passes an array of the same length; only
    /// the root's values count) and returns them on the host: the small decisions every rank must take alike.
    /// </summary>
    /// <param name="device">where the values travel (a backend may need them on the rank's device); the CPU by default</param>
    public static long[] BroadcastValues(this IProcessGroup group, long[] values, int root, Device? device = null)
    {
        using var sent = tensor(values, device: device ?? CPU);
        using var received = group.Broadcast(sent, root);
        using var host = received.cpu();
        return host.data<long>().ToArray();
    }
}
