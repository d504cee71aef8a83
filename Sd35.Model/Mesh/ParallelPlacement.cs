namespace Sd35.Mesh;

/// <summary>
/// Where one device sits in a parallel config, as plain topology (no backend): its CFG branch and submesh, its
/// position there, and the device ids of its groups. The sp and tp groups are the submesh lines through the
/// device along sp_axis and tp_axis (a factor of 1 gives a group of one, even if another factor shares the axis);
/// the cfg group pairs the devices at the same submesh position in each branch (uncond first), which is what
/// the guidance merge exchanges between.
/// </summary>
public sealed record ParallelPlacement(
    ParallelConfig Config, int DeviceId, int CfgIndex, DeviceMesh Submesh, MeshCoord SubmeshCoord,
    IReadOnlyList<int> SpMembers, IReadOnlyList<int> TpMembers, IReadOnlyList<int> CfgMembers)
{
    public static ParallelPlacement Of(DeviceMesh mesh, ParallelConfig config, int deviceId)
    {
        if (mesh.Shape != config.Mesh)
            throw new ArgumentException($"parallel config {config.Id ?? config.ToString()} is for a {config.Mesh} mesh, not {mesh.Shape}");
        var submeshes = Submeshes(mesh, config);
        int cfgIndex = Array.FindIndex(submeshes, s => s.Contains(deviceId));
        if (cfgIndex < 0) throw new ArgumentException($"device {deviceId} is not in the {mesh}");
        var submesh = submeshes[cfgIndex];
        var coord = submesh.CoordOf(deviceId);
        IReadOnlyList<int> LineOf(ParallelFactor f) => f.Factor == 1 ? [deviceId] : submesh.Line(coord, f.Axis);
        var cfgMembers = submeshes.Select(s => s[coord].Id).ToArray();
        return new ParallelPlacement(config, deviceId, cfgIndex, submesh, coord, LineOf(config.Sp), LineOf(config.Tp), cfgMembers);
    }

    /// <summary>The CFG submeshes in branch order: submesh 0 runs the unconditional branch, submesh 1 the conditional.</summary>
    public static DeviceMesh[] Submeshes(DeviceMesh mesh, ParallelConfig config) => mesh.Split(config.Cfg.Axis, config.Cfg.Factor).ToArray();

    public bool IsUncond => CfgIndex == 0;
}
