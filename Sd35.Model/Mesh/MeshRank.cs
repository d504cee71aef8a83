using static TorchSharp.torch;

namespace Sd35.Mesh;

/// <summary>
/// One device's view of a mesh run: who it is, where it is, and its process groups. Backend neutral; a rank
/// program (and the model code it calls) sees only this, <see cref="RankContext"/> and <see cref="IProcessGroup"/>.
/// </summary>
public sealed class MeshRank(DeviceMesh mesh, int id, ICommunicator communicator, CancellationToken aborted)
{
    public DeviceMesh Mesh { get; } = mesh;
    public int Id { get; } = id;
    public MeshCoord Coord { get; } = mesh.CoordOf(id);
    public Device Device { get; } = mesh[mesh.CoordOf(id)].Device;

    /// <summary>Cancelled when another rank has failed: long collective-free loops may poll it to stop early.</summary>
    public CancellationToken Aborted { get; } = aborted;

    public ICommunicator Communicator { get; } = communicator;

    /// <summary>A group of explicit members (device ids in rank order); groups of one are the identity group.</summary>
    public IProcessGroup Group(string label, IReadOnlyList<int> members) =>
        members.Count == 1 && members[0] == Id ? SingleProcessGroup.Instance : Communicator.Group(label, members, Id);

    /// <summary>The group along <paramref name="axis"/> of this rank's run mesh, labelled <c>axis0</c> / <c>axis1</c>.</summary>
    public IProcessGroup Axis(int axis) => Axis(Mesh, axis, $"axis{axis}");

    /// <summary>The group along <paramref name="axis"/> of a (sub)mesh that contains this device, such as the encoders' 1×4 reshape.</summary>
    public IProcessGroup Axis(DeviceMesh mesh, int axis, string label) => Group(label, mesh.Line(mesh.CoordOf(Id), axis));

    /// <summary>
    /// This device's place in <paramref name="config"/> with its groups created: sp, tp (as a <see cref="RankContext"/>)
    /// and cfg, labelled "sp", "tp" and "cfg" for the traffic accounting.
    /// </summary>
    public ParallelRank Place(ParallelConfig config)
    {
        var p = ParallelPlacement.Of(Mesh, config, Id);
        var context = new RankContext(Device, Group("sp", p.SpMembers), Group("tp", p.TpMembers));
        return new ParallelRank(p, context, Group("cfg", p.CfgMembers));
    }

    /// <summary>What this device moved through the groups labelled <paramref name="label"/> so far.</summary>
    public CollectiveStats Traffic(string label) => Communicator.Traffic(Id, label);

    public override string ToString() => $"rank {Id} at {Coord} on {Device}";
}

/// <summary>A device placed in a parallel config: the model's <see cref="RankContext"/> plus the CFG branch and its exchange group.</summary>
public sealed record ParallelRank(ParallelPlacement Placement, RankContext Context, IProcessGroup Cfg)
{
    public int CfgIndex => Placement.CfgIndex;
    public bool IsUncond => Placement.IsUncond;
}
