using FluentAssertions;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using static TorchSharp.torch;

namespace Sd35.Tests.Mesh;

[Collection(MeshRunCollection.Name)]
public class ParallelPlacementTests
{
    [Theory]
    // t3k_cfg2_sp2_tp2: two 2x2 submeshes, columns 0-1 (uncond) and 2-3 (cond).
    [InlineData("t3k_cfg2_sp2_tp2", 5, 0, 1, 1, new[] { 1, 5 }, new[] { 4, 5 }, new[] { 5, 7 })]
    [InlineData("t3k_cfg2_sp2_tp2", 2, 1, 0, 0, new[] { 2, 6 }, new[] { 2, 3 }, new[] { 0, 2 })]
    // t3k_cfg2_sp1_tp4: cfg splits the rows: two 1x4 submeshes.
    [InlineData("t3k_cfg2_sp1_tp4", 6, 1, 0, 2, new[] { 6 }, new[] { 4, 5, 6, 7 }, new[] { 2, 6 })]
    // tg_cfg2_sp4_tp4: two 4x4 submeshes, columns 0-3 and 4-7.
    [InlineData("tg_cfg2_sp4_tp4", 13, 1, 1, 1, new[] { 5, 13, 21, 29 }, new[] { 12, 13, 14, 15 }, new[] { 9, 13 })]
    [InlineData("t3k_cfg1_sp2_tp4", 6, 0, 1, 2, new[] { 2, 6 }, new[] { 4, 5, 6, 7 }, new[] { 6 })]
    [InlineData("n150_cfg1_sp1_tp1", 0, 0, 0, 0, new[] { 0 }, new[] { 0 }, new[] { 0 })]
    public void Placement_finds_the_branch_position_and_group_members(
        string id, int device, int cfgIndex, int row, int col, int[] sp, int[] tp, int[] cfg)
    {
        var config = ParallelConfig.Parse(id);
        var p = ParallelPlacement.Of(DeviceMesh.Create(config.Mesh), config, device);
        p.CfgIndex.Should().Be(cfgIndex);
        p.IsUncond.Should().Be(cfgIndex == 0);
        p.SubmeshCoord.Should().Be(new MeshCoord(row, col));
        p.Submesh.Shape.Should().Be(config.Submesh);
        p.SpMembers.Should().Equal(sp);
        p.TpMembers.Should().Equal(tp);
        p.CfgMembers.Should().Equal(cfg);
    }

    [Fact]
    public void A_config_for_another_mesh_is_refused()
    {
        var act = () => ParallelPlacement.Of(DeviceMesh.Create(2, 2), ParallelConfig.Parse("t3k_cfg2_sp2_tp2"), 0);
        act.Should().Throw<ArgumentException>().WithMessage("parallel config t3k_cfg2_sp2_tp2 is for a 2x4 mesh, not 2x2");
    }

    /// <summary>Each rank gathers the device ids over its placed groups: the groups really connect those devices.</summary>
    [Fact]
    public void Placed_groups_exchange_between_exactly_their_members()
    {
        var config = ParallelConfig.Parse("t3k_cfg2_sp2_tp2");
        var mesh = DeviceMesh.Create(config.Mesh);
        var gathered = MeshRunner.Run(mesh, rank =>
        {
            var placed = rank.Place(config);
            using var id = tensor(new float[] { rank.Id });
            using var sp = placed.Context.Sp.AllGather(id, 0);
            using var tp = placed.Context.Tp.AllGather(id, 0);
            using var cfg = placed.Cfg.AllGather(id, 0);
            placed.Context.Device.Should().Be(rank.Device);
            return (Sp: Ints(sp), Tp: Ints(tp), Cfg: Ints(cfg), placed.Placement);
        });
        foreach (var g in gathered)
        {
            g.Sp.Should().Equal(g.Placement.SpMembers);
            g.Tp.Should().Equal(g.Placement.TpMembers);
            g.Cfg.Should().Equal(g.Placement.CfgMembers);
        }
    }

    /// <summary>The encoders run tp 4 on the uncond 2x2 submesh reshaped to 1x4, as the reference does.</summary>
    [Fact]
    public void A_reshaped_submesh_gives_a_group_over_all_its_devices()
    {
        var mesh = DeviceMesh.Create(2, 4);
        var encoders = ParallelPlacement.Submeshes(mesh, ParallelConfig.Parse("t3k_cfg2_sp2_tp2"))[0].Reshape(new MeshShape(1, 4));
        var gathered = MeshRunner.Run(mesh, rank =>
        {
            if (!encoders.Contains(rank.Id)) return Array.Empty<int>();
            using var id = tensor(new float[] { rank.Id });
            using var all = rank.Axis(encoders, 1, "encoder-tp").AllGather(id, 0);
            return Ints(all);
        });
        foreach (var device in encoders.Ids) gathered[device].Should().Equal(0, 1, 4, 5);
        gathered[2].Should().BeEmpty();
    }

    static int[] Ints(Tensor t) => t.data<float>().Select(v => (int)v).ToArray();
}
