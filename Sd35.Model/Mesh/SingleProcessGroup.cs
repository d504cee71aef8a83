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
}
