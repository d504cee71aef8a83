using Sd35.Mesh;
using Sd35.Tensors.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Layers.Parallel;

/// <summary>
/// GroupNorm over a channel-sharded activation. Groups are contiguous channel ranges, so when the group count is
/// a multiple of the tensor-parallel size each rank's contiguous channel slice holds whole groups: their mean and
/// variance are local, and the layer needs no communication (it is the same function as the unsharded GroupNorm,
/// not an approximation). A split group would need its statistics all-reduced; that layout is refused instead.
/// With a group of one it is an ordinary <c>nn.GroupNorm</c>; parameter names are <c>weight</c> and <c>bias</c>.
/// </summary>
sealed class ChannelParallelGroupNorm : nn.Module<Tensor, Tensor>, IShardedParameters
{
    readonly ShardLayout _layout;
    readonly long _localGroups;
    readonly double _eps;
    public Parameter weight;
    public Parameter bias;

    public ChannelParallelGroupNorm(int groups, long channels, double eps, IProcessGroup tp,
        ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base(nameof(ChannelParallelGroupNorm))
    {
        if (groups <= 0 || channels % groups != 0) throw new ArgumentException($"{channels} channels do not form {groups} equal groups");
        if (groups % tp.Size != 0)
            throw new ArgumentException($"{groups} groups do not split over {tp.Size} ranks; a group shared by two ranks is not supported");
        _layout = new ShardLayout(0, tp.Rank, tp.Size);
        _localGroups = groups / tp.Size;
        _eps = eps;
        weight = new Parameter(empty(_layout.LocalSize(channels), dtype, device), requires_grad: false);
        bias = new Parameter(empty(_layout.LocalSize(channels), dtype, device), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => Kernels.GroupNorm(input, _localGroups, weight, bias, _eps);

    public bool HoldsWhole(string parameterName) => _layout.Size == 1;

    public Tensor? ShardFromFull(string parameterName, Tensor full) => _layout.Size == 1 ? null : _layout.Apply(full);
}
