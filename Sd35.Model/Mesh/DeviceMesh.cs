using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Mesh;

/// <summary>
/// One logical device of a mesh. <see cref="Id"/> is its row-major index in the mesh it was first created in and
/// stays the same in every submesh or reshape, so it names the device (and its rank thread) everywhere.
/// </summary>
public sealed record LogicalDevice(DeviceId Id, Device Device)
{
    public override string ToString() => $"device {Id} ({Device})";
}

/// <summary>
/// A rows × cols grid of logical devices, each bound to a TorchSharp device: who is next to whom, not how bytes move
/// (an <see cref="ICommunicator"/> turns its lines into process groups). Submeshes keep their devices' ids, so a group
/// built on a submesh (one CFG branch, the encoders' reshaped 1×4) connects the same ranks as the parent.
/// </summary>
public sealed class DeviceMesh
{
    readonly LogicalDevice[] _devices; // row-major

    DeviceMesh(MeshShape shape, LogicalDevice[] devices)
    {
        Shape = shape;
        _devices = devices;
    }

    public MeshShape Shape { get; }
    public int Size => _devices.Length;

    /// <summary>The devices in row-major order; a device's index here is its position in this mesh, not its id.</summary>
    public IReadOnlyList<LogicalDevice> Devices => _devices;

    public LogicalDevice this[MeshCoord coord] => _devices[IndexOf(coord)];
    public LogicalDevice this[int row, int col] => this[new MeshCoord(row, col)];

    /// <summary>
    /// A new mesh of the given shape; <paramref name="place"/> binds logical device i to a TorchSharp device (the
    /// CPU without it; see <see cref="DeviceBinding"/> for CUDA).
    /// </summary>
    public static DeviceMesh Create(MeshShape shape, Func<DeviceId, Device>? place = null)
    {
        place ??= _ => CPU;
        return new DeviceMesh(shape, Enumerable.Range(0, shape.Size).Select(id => new LogicalDevice(id, place(id))).ToArray());
    }

    public static DeviceMesh Create(int rows, int cols, Func<DeviceId, Device>? place = null) => Create(new MeshShape(rows, cols), place);

    public MeshCoord CoordOf(DeviceId id) =>
        TryCoordOf(id, out var coord) ? coord : throw new ArgumentException($"device {id} is not in this {Shape} mesh (devices {string.Join(",", Ids)})");

    public bool TryCoordOf(DeviceId id, out MeshCoord coord)
    {
        int index = Array.FindIndex(_devices, d => d.Id == id);
        coord = index < 0 ? default : new MeshCoord(index / Shape.Cols, index % Shape.Cols);
        return index >= 0;
    }

    public bool Contains(DeviceId id) => TryCoordOf(id, out _);

    public IReadOnlyList<DeviceId> Ids => _devices.Select(d => d.Id).ToArray();

    /// <summary>The TorchSharp device that logical device <paramref name="id"/> is bound to.</summary>
    public Device DeviceOf(DeviceId id) => this[CoordOf(id)].Device;

    /// <summary>
    /// The ids of the devices on the line through <paramref name="coord"/> along <paramref name="axis"/>, in
    /// coordinate order: the members of that axis's process group, rank i being the i-th.
    /// </summary>
    public IReadOnlyList<DeviceId> Line(MeshCoord coord, int axis)
    {
        IndexOf(coord);
        return Enumerable.Range(0, Shape[axis]).Select(i => this[coord.With(axis, i)].Id).ToArray();
    }

    /// <summary>
    /// Cuts the mesh along <paramref name="axis"/> into <paramref name="parts"/> equal, contiguous submeshes, in
    /// coordinate order (2×4 along axis 1 into 2: columns 0–1 and 2–3), as the reference's CFG submeshes.
    /// </summary>
    public IReadOnlyList<DeviceMesh> Split(int axis, int parts)
    {
        int extent = Shape[axis];
        if (parts < 1 || extent % parts != 0)
            throw new ArgumentException($"cannot split the {Shape} mesh along axis {axis} (size {extent}) into {parts} equal parts");
        int step = extent / parts;
        var subShape = Shape.With(axis, step);
        return Enumerable.Range(0, parts).Select(p =>
        {
            var devices = new LogicalDevice[subShape.Size];
            for (int r = 0; r < subShape.Rows; r++)
                for (int c = 0; c < subShape.Cols; c++)
                    devices[r * subShape.Cols + c] = this[new MeshCoord(r, c).With(axis, new MeshCoord(r, c)[axis] + p * step)];
            return new DeviceMesh(subShape, devices);
        }).ToArray();
    }

    /// <summary>
    /// The same devices, read in row-major order, laid out as <paramref name="shape"/> (the reference reshapes a
    /// 2×2 CFG submesh to 1×4 for the text encoders). In-process, adjacency is free; a physical backend may want
    /// a ring-preserving order instead.
    /// </summary>
    public DeviceMesh Reshape(MeshShape shape)
    {
        if (shape.Size != Size) throw new ArgumentException($"cannot reshape a {Shape} mesh ({Size} devices) to {shape} ({shape.Size} devices)");
        return new DeviceMesh(shape, _devices);
    }

    int IndexOf(MeshCoord coord)
    {
        if (coord.Row < 0 || coord.Row >= Shape.Rows || coord.Col < 0 || coord.Col >= Shape.Cols)
            throw new ArgumentOutOfRangeException(nameof(coord), coord, $"outside the {Shape} mesh");
        return coord.Row * Shape.Cols + coord.Col;
    }

    public override string ToString() => $"{Shape} mesh [{string.Join(",", Ids)}]";
}
