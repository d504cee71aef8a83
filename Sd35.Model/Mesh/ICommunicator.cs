namespace Sd35.Mesh;

/// <summary>
/// Makes process groups: the backend seam behind <see cref="MeshRank"/>. The in-process backend answers with
/// rendezvous between threads; an NCCL or MPI backend would answer with communicators over the same devices.
/// </summary>
public interface ICommunicator
{
    /// <summary>
    /// Device <paramref name="self"/>'s handle on the group of <paramref name="members"/> (device ids, rank i being
    /// the i-th). Every member must ask for the same label and members. Asking again returns the same group; two
    /// labels over the same devices are independent groups (own sequence of collectives). A communicator lives as long
    /// as its mesh session, so the groups it hands out do too. Traffic is accounted per device and label.
    /// </summary>
    IProcessGroup Group(string label, IReadOnlyList<DeviceId> members, DeviceId self);

    /// <summary>What device <paramref name="self"/> moved through the groups of <paramref name="label"/> so far.</summary>
    CollectiveStats Traffic(DeviceId self, string label);

    /// <summary>Every label device <paramref name="self"/> has traffic under, with its statistics.</summary>
    IReadOnlyDictionary<string, CollectiveStats> TrafficOf(DeviceId self);
}
