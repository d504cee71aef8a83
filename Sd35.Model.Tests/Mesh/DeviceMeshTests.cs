using FluentAssertions;
using Sd35.Mesh;
using static TorchSharp.torch;

namespace Sd35.Tests.Mesh;

public class DeviceMeshTests
{
    static int[] Ids(DeviceMesh mesh) => mesh.Ids.Numbers();

    [Fact]
    public void Devices_are_numbered_row_major_and_bound_to_the_cpu_here()
    {
        var mesh = DeviceMesh.Create(2, 4);
        mesh.Size.Should().Be(8);
        Ids(mesh).Should().Equal(0, 1, 2, 3, 4, 5, 6, 7);
        mesh[1, 2].Id.Should().Be(6);
        mesh.CoordOf(6).Should().Be(new MeshCoord(1, 2));
        mesh.Devices.Should().OnlyContain(d => d.Device.type == TorchSharp.DeviceType.CPU);
    }

    [Fact]
    public void A_custom_placement_binds_each_logical_device()
    {
        var mesh = DeviceMesh.Create(1, 2, id => new Device(TorchSharp.DeviceType.CPU, id.Value));
        mesh[0, 1].Device.index.Should().Be(1);
    }

    [Fact]
    public void Lines_list_the_devices_along_an_axis_in_coordinate_order()
    {
        var mesh = DeviceMesh.Create(2, 4);
        mesh.Line(new MeshCoord(1, 2), 0).Should().Equal(2, 6);
        mesh.Line(new MeshCoord(1, 2), 1).Should().Equal(4, 5, 6, 7);
    }

    [Fact]
    public void Split_cuts_contiguous_equal_submeshes_that_keep_device_ids()
    {
        var mesh = DeviceMesh.Create(2, 4);
        var halves = mesh.Split(1, 2);
        halves.Select(h => h.Shape).Should().AllBeEquivalentTo(new MeshShape(2, 2));
        Ids(halves[0]).Should().Equal(0, 1, 4, 5);
        Ids(halves[1]).Should().Equal(2, 3, 6, 7);
        halves[1].CoordOf(7).Should().Be(new MeshCoord(1, 1));
        halves[1].Line(new MeshCoord(0, 1), 0).Should().Equal(3, 7);

        var rows = mesh.Split(0, 2);
        Ids(rows[1]).Should().Equal(4, 5, 6, 7);
        rows[1].Shape.Should().Be(new MeshShape(1, 4));
    }

    [Fact]
    public void Reshape_lays_the_same_devices_out_row_major()
    {
        var submesh = DeviceMesh.Create(2, 4).Split(1, 2)[0];
        var encoders = submesh.Reshape(new MeshShape(1, 4));
        Ids(encoders).Should().Equal(0, 1, 4, 5);
        encoders.Line(new MeshCoord(0, 3), 1).Should().Equal(0, 1, 4, 5);
    }

    [Fact]
    public void Impossible_splits_reshapes_and_coordinates_are_refused()
    {
        var mesh = DeviceMesh.Create(2, 4);
        mesh.Invoking(m => m.Split(1, 3)).Should().Throw<ArgumentException>()
            .WithMessage("cannot split the 2x4 mesh along axis 1 (size 4) into 3 equal parts");
        mesh.Invoking(m => m.Reshape(new MeshShape(3, 3))).Should().Throw<ArgumentException>()
            .WithMessage("cannot reshape a 2x4 mesh (8 devices) to 3x3 (9 devices)");
        mesh.Invoking(m => m[2, 0]).Should().Throw<ArgumentOutOfRangeException>();
        mesh.Split(1, 2)[0].Invoking(m => m.CoordOf(2)).Should().Throw<ArgumentException>().WithMessage("device 2 is not in this 2x2 mesh*");
        FluentActions.Invoking(() => new MeshShape(0, 4)).Should().Throw<ArgumentException>()
            .WithMessage("a mesh needs at least one row and one column, got 0x4");
        FluentActions.Invoking(() => new MeshShape(2, 2)[2]).Should().Throw<ArgumentOutOfRangeException>();
    }
}
