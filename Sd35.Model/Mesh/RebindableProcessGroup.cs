using static TorchSharp.torch;

namespace Sd35.Mesh;

/// <summary>
/// A group handle that forwards every collective to the group it is bound to now. A model kept between mesh runs
/// holds these instead of a run's groups: each in-process run makes a fresh communicator (and so fresh groups),
/// and before the model runs again its handles are bound to the new run's groups of the same members.
/// </summary>
public sealed class RebindableProcessGroup(IProcessGroup target) : IProcessGroup
{
    IProcessGroup _target = target;

    public IProcessGroup Target => Volatile.Read(ref _target);

    /// <summary>Binds to <paramref name="next"/>, which must be the same place in a group of the same size.</summary>
    public void Bind(IProcessGroup next)
    {
        var current = Target;
        if (next.Rank != current.Rank || next.Size != current.Size)
            throw new InvalidOperationException($"a kept model's group was rank {current.Rank} of {current.Size}; it cannot be rebound to rank {next.Rank} of {next.Size}");
        Volatile.Write(ref _target, next);
    }

    public int Rank => Target.Rank;
    public int Size => Target.Size;
    public Tensor AllGather(Tensor local, long dim) => Target.AllGather(local, dim);
    public Tensor ReduceScatter(Tensor local, long dim) => Target.ReduceScatter(local, dim);
    public Tensor AllReduce(Tensor local) => Target.AllReduce(local);
    public Tensor AllToAll(Tensor local, long scatterDim, long gatherDim) => Target.AllToAll(local, scatterDim, gatherDim);
    public Tensor RingShift(Tensor local) => Target.RingShift(local);
    public Tensor Broadcast(Tensor local, int root) => Target.Broadcast(local, root);
    public Tensor SendReceive(Tensor local, int toRank, int fromRank) => Target.SendReceive(local, toRank, fromRank);
    public IPendingTensor StartSendReceive(Tensor local, int toRank, int fromRank) => Target.StartSendReceive(local, toRank, fromRank);
}
