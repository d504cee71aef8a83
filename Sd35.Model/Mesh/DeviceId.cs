using System.Globalization;

namespace Sd35.Mesh;

/// <summary>
/// A logical device's name: its row-major index in the mesh it was made in, the same in every submesh or reshape (and,
/// under MPI, the process's world rank). It is never a rank in a process group (<see cref="IProcessGroup.Rank"/>, a
/// plain int counted within the group); <see cref="MeshRank.RankOf"/> turns one into the other. A number converts to a
/// device id (a test's or a command line's device), a device id never silently to a number.
/// </summary>
public readonly record struct DeviceId(int Value) : IComparable<DeviceId>
{
    public static implicit operator DeviceId(int value) => new(value);

    public int CompareTo(DeviceId other) => Value.CompareTo(other.Value);

    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}
