using static TorchSharp.torch;

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
    Tensor RingShift(Tensor local);

    /// <summary>Every rank gets rank <paramref name="root"/>'s tensor.</summary>
    Tensor Broadcast(Tensor local, int root);
}
