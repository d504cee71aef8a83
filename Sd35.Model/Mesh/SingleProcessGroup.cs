using static TorchSharp.torch;

namespace Sd35.Mesh;

/// <summary>The group of one: every collective is the identity. A model on one device runs with this.</summary>
public sealed class SingleProcessGroup : IProcessGroup
{
    public static SingleProcessGroup Instance { get; } = new();

    public int Rank => 0;
    public int Size => 1;

    public Tensor AllGather(Tensor local, long dim) => local.alias();
    public Tensor ReduceScatter(Tensor local, long dim) => local.alias();
    public Tensor AllReduce(Tensor local) => local.alias();
    public Tensor AllToAll(Tensor local, long scatterDim, long gatherDim) => local.alias();
    public Tensor RingShift(Tensor local) => local.alias();
    public Tensor Broadcast(Tensor local, int root) => local.alias();

    public Tensor SendReceive(Tensor local, int toRank, int fromRank)
    {
        if (toRank != 0 || fromRank != 0)
            throw new ArgumentOutOfRangeException(nameof(toRank), $"a group of one can only send to and receive from rank 0, got to {toRank}, from {fromRank}");
        return local.alias();
    }

    public IPendingTensor StartSendReceive(Tensor local, int toRank, int fromRank) => new CompletedExchange(SendReceive(local, toRank, fromRank));
}

/// <summary>An exchange that was complete when posted (with oneself): <see cref="Wait"/> hands over the result once.</summary>
sealed class CompletedExchange(Tensor result) : IPendingTensor
{
    Tensor? _result = result;

    public Tensor Wait() => Interlocked.Exchange(ref _result, null) ?? throw new InvalidOperationException("Wait was already called");

    public void Dispose() => Interlocked.Exchange(ref _result, null)?.Dispose();
}
