using static TorchSharp.torch;

namespace Sd35.Mesh;

/// <summary>
/// The names of a rank's process groups, as DTensor's <c>mesh_dim_names</c>: <c>rank["tp"]</c> is DTensor's
/// <c>mesh["tp"]</c>. Each name is also the group's traffic label.
/// </summary>
public static class MeshGroups
{
    /// <summary>The devices at the same submesh position in each guidance branch (uncond first): the guidance merge's exchange.</summary>
    public const string Cfg = "cfg";

    /// <summary>The sequence-parallel (ring attention) line through the device in its cfg submesh.</summary>
    public const string Sp = "sp";

    /// <summary>The tensor-parallel (heads, hidden features) line through the device in its cfg submesh.</summary>
    public const string Tp = "tp";

    /// <summary>Every device of the mesh in mesh order: what every device must receive alike (the prompt, the image, a stop).</summary>
    public const string World = "world";

    /// <summary>The text encoders' tensor-parallel group (<see cref="StagePlacement.TextEncoders"/>); absent on a device that sits them out.</summary>
    public const string TextEncoders = "text_encoders";

    /// <summary>The VAE's tensor-parallel group (<see cref="StagePlacement.Vae"/>); absent on a device that sits it out.</summary>
    public const string Vae = "vae";
}

/// <summary>
/// "Where am I" on one device of a mesh run: the device (its <see cref="DeviceId"/>, coordinate and TorchSharp device)
/// and its process groups by name. A launcher hands every rank program one; <see cref="Place"/> names the groups of a
/// parallel config (cfg, sp, tp, world, text_encoders, vae) and the CFG branch; <see cref="ForStage"/> is the view a
/// stage's tensor-parallel models get. Models read <see cref="Device"/>, <see cref="Sp"/> and <see cref="Tp"/> only, so
/// one device is <see cref="Single"/>: every group is the group of one. Groups come from the launcher's communicator,
/// which makes each once per mesh session, so a model kept between runs keeps working groups. Backend neutral.
/// </summary>
public sealed class MeshRank
{
    readonly ICommunicator? _communicator;
    readonly IReadOnlyDictionary<string, GroupSpec> _named;
    readonly Dictionary<string, IProcessGroup> _made = [];

    /// <summary>A named group: its traffic label and its members (device ids; rank i is the i-th).</summary>
    sealed record GroupSpec(string Label, IReadOnlyList<DeviceId> Members);

    /// <summary>A launched rank with no parallel config yet: only the <see cref="MeshGroups.World"/> group is named.</summary>
    public MeshRank(DeviceMesh mesh, DeviceId id, ICommunicator communicator, CancellationToken aborted)
        : this(mesh, id, communicator, aborted, new Dictionary<string, GroupSpec> { [MeshGroups.World] = new(MeshGroups.World, mesh.Ids) }, null, 0)
    {
    }

    MeshRank(DeviceMesh mesh, DeviceId id, ICommunicator? communicator, CancellationToken aborted,
        IReadOnlyDictionary<string, GroupSpec> named, ParallelConfig? config, int cfgIndex)
    {
        Mesh = mesh;
        Id = id;
        Coord = mesh.CoordOf(id);
        Device = mesh.DeviceOf(id);
        _communicator = communicator;
        Aborted = aborted;
        _named = named;
        Config = config;
        CfgIndex = cfgIndex;
    }

    /// <summary>One device alone (the 1×1 mesh, device 0): every group is the group of one, every collective the identity.</summary>
    public static MeshRank Single(Device? device = null)
    {
        var mesh = DeviceMesh.Create(1, 1, _ => device ?? CPU);
        var alone = new Dictionary<string, GroupSpec>();
        return new MeshRank(mesh, mesh.Ids[0], null, CancellationToken.None, alone, null, 0);
    }

    public DeviceMesh Mesh { get; }
    public DeviceId Id { get; }
    public MeshCoord Coord { get; }
    public Device Device { get; }

    /// <summary>Cancelled when another rank has failed: long collective-free loops may poll it to stop early.</summary>
    public CancellationToken Aborted { get; }

    /// <summary>The parallel config this rank is placed in (<see cref="Place"/>); null before.</summary>
    public ParallelConfig? Config { get; }

    /// <summary>The CFG branch this device runs: submesh 0 the unconditional, submesh 1 the conditional (0 when cfg is 1).</summary>
    public int CfgIndex { get; }

    public bool IsUncond => CfgIndex == 0;

    /// <summary>
    /// The group named <paramref name="name"/> (<see cref="MeshGroups"/>). A parallel dimension the rank does not have
    /// is a group of one, as DTensor's mesh has size 1 along a dimension it does not shard (a single device has every
    /// name); a stage the device sits out is an error, never a silent group of one (<see cref="ForStage"/> says so with null).
    /// </summary>
    public IProcessGroup this[string name]
    {
        get
        {
            if (_made.TryGetValue(name, out var made)) return made;
            if (_named.TryGetValue(name, out var spec)) return _made[name] = Group(spec.Label, spec.Members);
            if (Mesh.Size > 1 && name is MeshGroups.TextEncoders or MeshGroups.Vae)
                throw new InvalidOperationException($"device {Id} does not run the {name} stage of {Config?.Id ?? Config?.ToString() ?? "this mesh"}");
            return _made[name] = SingleProcessGroup.Instance;
        }
    }

    /// <summary>Whether this device is a member of the group <paramref name="name"/> (a stage's group lists only the devices that run it).</summary>
    public bool Has(string name) => _named.ContainsKey(name) || Mesh.Size == 1;

    public IProcessGroup Sp => this[MeshGroups.Sp];
    public IProcessGroup Tp => this[MeshGroups.Tp];
    public IProcessGroup Cfg => this[MeshGroups.Cfg];
    public IProcessGroup World => this[MeshGroups.World];

    /// <summary>The members of the group <paramref name="name"/>, rank i being the i-th (this device alone for a name it does not have).</summary>
    public IReadOnlyList<DeviceId> Members(string name) => _named.TryGetValue(name, out var spec) ? spec.Members : [Id];

    /// <summary>The rank of <paramref name="device"/> in the group <paramref name="name"/>: a device id turned into a group rank, here only.</summary>
    public int RankOf(string name, DeviceId device)
    {
        var members = Members(name);
        for (int i = 0; i < members.Count; i++)
            if (members[i] == device) return i;
        throw new ArgumentException($"device {device} is not a member of group '{name}' [{string.Join(",", members)}]");
    }

    /// <summary>A group of explicit members (device ids in rank order), labelled for the traffic accounting; a group of one is the identity group.</summary>
    public IProcessGroup Group(string label, IReadOnlyList<DeviceId> members)
    {
        if (members.Count == 1 && members[0] == Id) return SingleProcessGroup.Instance;
        return (_communicator ?? throw new InvalidOperationException($"{this} has no communicator: it cannot make group '{label}' of devices [{string.Join(",", members)}]"))
            .Group(label, members, Id);
    }

    /// <summary>The group along <paramref name="axis"/> of this rank's mesh, labelled <c>axis0</c> / <c>axis1</c> (collective tests on a bare mesh).</summary>
    public IProcessGroup Axis(int axis) => Axis(Mesh, axis, $"axis{axis}");

    /// <summary>The group along <paramref name="axis"/> of a (sub)mesh that contains this device, such as the encoders' 1×4 reshape.</summary>
    public IProcessGroup Axis(DeviceMesh mesh, int axis, string label) => Group(label, mesh.Line(mesh.CoordOf(Id), axis));

    /// <summary>
    /// This device placed in <paramref name="config"/>: the same device with the groups cfg, sp, tp, world and (where the
    /// device runs them) text_encoders and vae named (<see cref="GroupMembers"/>), and its CFG branch.
    /// </summary>
    public MeshRank Place(ParallelConfig config)
    {
        var named = GroupMembers(Mesh, config, Id).ToDictionary(g => g.Key, g => new GroupSpec(g.Key, g.Value));
        return new MeshRank(Mesh, Id, _communicator, Aborted, named, config, CfgBranchOf(Mesh, config, Id));
    }

    /// <summary>
    /// The view a stage's models get: the same device with the group <paramref name="name"/> (text_encoders or vae) as
    /// its tp and no sp or cfg; null when this device sits the stage out.
    /// </summary>
    public MeshRank? ForStage(string name)
    {
        if (!_named.TryGetValue(name, out var spec)) return Mesh.Size == 1 ? this : null;
        return TensorParallelOver(spec.Label, spec.Members);
    }

    /// <summary>The same device as a member of a tensor-parallel group of <paramref name="members"/> (labelled <paramref name="label"/>) and nothing else.</summary>
    public MeshRank TensorParallelOver(string label, IReadOnlyList<DeviceId> members)
    {
        var named = new Dictionary<string, GroupSpec> { [MeshGroups.Tp] = new(label, members), [MeshGroups.World] = _named.GetValueOrDefault(MeshGroups.World) ?? new(MeshGroups.World, Mesh.Ids) };
        return new MeshRank(Mesh, Id, _communicator, Aborted, named, Config, CfgIndex);
    }

    /// <summary>What this device moved through the groups labelled <paramref name="label"/> so far.</summary>
    public CollectiveStats Traffic(string label) => Communicator.Traffic(Id, label);

    /// <summary>What this device moved so far, by label.</summary>
    public IReadOnlyDictionary<string, CollectiveStats> TrafficByLabel() => Communicator.TrafficOf(Id);

    ICommunicator Communicator => _communicator ?? throw new InvalidOperationException($"{this} has no communicator and so no traffic");

    /// <summary>
    /// The members of each named group of <paramref name="device"/> in <paramref name="config"/>, as plain topology (no
    /// backend; the MPI communicator splits its communicators from it). The sp and tp groups are the submesh lines through
    /// the device along sp_axis and tp_axis (a factor of 1 gives a group of one, even if another factor shares the axis);
    /// the cfg group pairs the devices at the same submesh position in each branch (uncond first); world is the whole
    /// mesh; text_encoders and vae are listed only where the device runs them (<see cref="StagePlacement"/>).
    /// </summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<DeviceId>> GroupMembers(DeviceMesh mesh, ParallelConfig config, DeviceId device)
    {
        var submeshes = CfgSubmeshes(mesh, config);
        var submesh = submeshes[CfgBranchOf(mesh, config, device)];
        var coord = submesh.CoordOf(device);
        IReadOnlyList<DeviceId> LineOf(ParallelFactor f) => f.Factor == 1 ? [device] : submesh.Line(coord, f.Axis);
        var groups = new Dictionary<string, IReadOnlyList<DeviceId>>
        {
            [MeshGroups.World] = mesh.Ids,
            [MeshGroups.Cfg] = submeshes.Select(s => s[coord].Id).ToArray(),
            [MeshGroups.Sp] = LineOf(config.Sp),
            [MeshGroups.Tp] = LineOf(config.Tp),
        };
        if (StagePlacement.TextEncoders(mesh, config, device) is { } encoders) groups[MeshGroups.TextEncoders] = encoders;
        if (StagePlacement.Vae(mesh, config, device) is { } vae) groups[MeshGroups.Vae] = vae;
        return groups;
    }

    /// <summary>The CFG submeshes in branch order: submesh 0 runs the unconditional branch, submesh 1 the conditional.</summary>
    public static IReadOnlyList<DeviceMesh> CfgSubmeshes(DeviceMesh mesh, ParallelConfig config)
    {
        if (mesh.Shape != config.Mesh)
            throw new ArgumentException($"parallel config {config.Id ?? config.ToString()} is for a {config.Mesh} mesh, not {mesh.Shape}");
        return mesh.Split(config.Cfg.Axis, config.Cfg.Factor);
    }

    static int CfgBranchOf(DeviceMesh mesh, ParallelConfig config, DeviceId device)
    {
        var submeshes = CfgSubmeshes(mesh, config);
        for (int i = 0; i < submeshes.Count; i++)
            if (submeshes[i].Contains(device)) return i;
        throw new ArgumentException($"device {device} is not in the {mesh}");
    }

    public override string ToString() => $"rank {Id} at {Coord} on {Device}";
}
