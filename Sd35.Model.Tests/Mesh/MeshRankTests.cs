using FluentAssertions;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using static TorchSharp.torch;

namespace Sd35.Tests.Mesh;

[Collection(MeshRunCollection.Name)]
public class MeshRankTests
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
        var mesh = DeviceMesh.Create(config.Mesh);
        var groups = MeshRank.GroupMembers(mesh, config, device);
        var submesh = MeshRank.CfgSubmeshes(mesh, config)[cfgIndex];
        submesh.Contains(device).Should().BeTrue();
        submesh.CoordOf(device).Should().Be(new MeshCoord(row, col));
        submesh.Shape.Should().Be(config.Submesh);
        Ints(groups[MeshGroups.Sp]).Should().Equal(sp);
        Ints(groups[MeshGroups.Tp]).Should().Equal(tp);
        Ints(groups[MeshGroups.Cfg]).Should().Equal(cfg);
        groups[MeshGroups.World].Should().Equal(mesh.Ids);
    }

    [Theory]
    // t3k_cfg2_sp2_tp2: the uncond 2x2 submesh reshaped to 1x4 runs the text encoders and the VAE.
    [InlineData("t3k_cfg2_sp2_tp2", 5, new[] { 0, 1, 4, 5 }, new[] { 0, 1, 4, 5 })]
    [InlineData("t3k_cfg2_sp2_tp2", 2, null, null)]
    // t3k_cfg2_sp1_tp4: 1x4 submeshes need no reshape, so the VAE runs on the last one.
    [InlineData("t3k_cfg2_sp1_tp4", 2, new[] { 0, 1, 2, 3 }, null)]
    [InlineData("t3k_cfg2_sp1_tp4", 6, null, new[] { 4, 5, 6, 7 })]
    // tg_cfg2_sp4_tp4: a 4x4 submesh runs each stage row by row.
    [InlineData("tg_cfg2_sp4_tp4", 13, null, new[] { 12, 13, 14, 15 })]
    [InlineData("tg_cfg2_sp4_tp4", 9, new[] { 8, 9, 10, 11 }, null)]
    public void The_text_encoders_and_the_vae_are_named_groups_where_the_device_runs_them(string id, int device, int[]? encoders, int[]? vae)
    {
        var config = ParallelConfig.Parse(id);
        var groups = MeshRank.GroupMembers(DeviceMesh.Create(config.Mesh), config, device);
        (groups.TryGetValue(MeshGroups.TextEncoders, out var e) ? Ints(e) : null).Should().BeEquivalentTo(encoders, o => o.WithStrictOrdering());
        (groups.TryGetValue(MeshGroups.Vae, out var v) ? Ints(v) : null).Should().BeEquivalentTo(vae, o => o.WithStrictOrdering());
    }

    [Fact]
    public void A_config_for_another_mesh_is_refused()
    {
        var act = () => MeshRank.GroupMembers(DeviceMesh.Create(2, 2), ParallelConfig.Parse("t3k_cfg2_sp2_tp2"), 0);
        act.Should().Throw<ArgumentException>().WithMessage("parallel config t3k_cfg2_sp2_tp2 is for a 2x4 mesh, not 2x2");
    }

    /// <summary>Each rank gathers the device ids over its placed groups: the groups really connect those devices.</summary>
    [Fact]
    public void Placed_groups_exchange_between_exactly_their_members()
    {
        var config = ParallelConfig.Parse("t3k_cfg2_sp2_tp2");
        var mesh = DeviceMesh.Create(config.Mesh);
        var gathered = MeshRunner.Run(mesh, launched =>
        {
            var rank = launched.Place(config);
            using var id = tensor(new float[] { rank.Id.Value });
            var names = new[] { MeshGroups.Sp, MeshGroups.Tp, MeshGroups.Cfg, MeshGroups.World, MeshGroups.TextEncoders, MeshGroups.Vae };
            var exchanged = names.Where(rank.Has).ToDictionary(n => n, n =>
            {
                using var all = rank[n].AllGather(id, 0);
                return (Got: Ints(all), Members: Ints(rank.Members(n)));
            });
            rank.Device.Should().Be(launched.Device);
            rank.IsUncond.Should().Be(mesh.CoordOf(rank.Id).Col < 2);
            return exchanged;
        });
        foreach (var device in gathered)
            foreach (var (name, (got, members)) in device)
                got.Should().Equal(members, name);
        gathered[0].Keys.Should().Contain([MeshGroups.TextEncoders, MeshGroups.Vae]);
        gathered[2].Keys.Should().NotContain(MeshGroups.TextEncoders);
    }

    [Fact]
    public void A_stage_the_device_sits_out_is_no_group_of_one()
    {
        var config = ParallelConfig.Parse("t3k_cfg2_sp2_tp2");
        var rank = new MeshRank(DeviceMesh.Create(config.Mesh), 2, new NoCommunicator(), CancellationToken.None).Place(config);
        rank.Has(MeshGroups.Vae).Should().BeFalse();
        rank.ForStage(MeshGroups.Vae).Should().BeNull();
        var act = () => rank[MeshGroups.Vae];
        act.Should().Throw<InvalidOperationException>().WithMessage("device 2 does not run the vae stage of t3k_cfg2_sp2_tp2");
    }

    /// <summary>A stage's view: the stage's group as tp, no sp or cfg; a device that sits the stage out has none.</summary>
    [Fact]
    public void A_stage_view_has_the_stage_group_as_its_tp()
    {
        var config = ParallelConfig.Parse("t3k_cfg2_sp2_tp2");
        var views = MeshRunner.Run(config, rank =>
        {
            var stage = rank.ForStage(MeshGroups.Vae);
            if (stage is null) return null;
            using var id = tensor(new float[] { rank.Id.Value });
            using var all = stage.Tp.AllGather(id, 0);
            return new { Tp = Ints(all), SpSize = stage.Sp.Size, CfgSize = stage.Cfg.Size, stage.Id };
        });
        views.Where(v => v is not null).Select(v => v!.Id.Value).Should().Equal(0, 1, 4, 5);
        views.Where(v => v is not null).Should().OnlyContain(v => v!.Tp.SequenceEqual(new[] { 0, 1, 4, 5 }) && v.SpSize == 1 && v.CfgSize == 1);
    }

    /// <summary>Device ids become group ranks in one place: the lead (device 0) is rank 0 of world, device 5 rank 3 of the encoders' group.</summary>
    [Fact]
    public void RankOf_turns_a_device_id_into_its_rank_in_a_named_group()
    {
        var config = ParallelConfig.Parse("t3k_cfg2_sp2_tp2");
        var mesh = DeviceMesh.Create(config.Mesh, _ => CPU);
        var rank = new MeshRank(mesh, 1, new NoCommunicator(), CancellationToken.None).Place(config);
        rank.RankOf(MeshGroups.World, 5).Should().Be(5);
        rank.RankOf(MeshGroups.TextEncoders, 5).Should().Be(3);
        rank.RankOf(MeshGroups.Sp, 5).Should().Be(1);
        var act = () => rank.RankOf(MeshGroups.Tp, 5);
        act.Should().Throw<ArgumentException>().WithMessage("device 5 is not a member of group 'tp' [0,1]");
    }

    [Fact]
    public void A_single_device_has_every_group_as_the_group_of_one()
    {
        var rank = MeshRank.Single();
        foreach (var name in new[] { MeshGroups.Sp, MeshGroups.Tp, MeshGroups.Cfg, MeshGroups.World, MeshGroups.Vae })
            rank[name].Should().BeSameAs(SingleProcessGroup.Instance);
        rank.ForStage(MeshGroups.TextEncoders).Should().BeSameAs(rank);
        rank.Id.Should().Be(new DeviceId(0));
    }

    /// <summary>
    /// A session's runs share their process groups, so a model kept from one run to the next holds live groups; a run
    /// that failed halfway (one rank gone, the others released from a collective) leaves the next one a clean start.
    /// </summary>
    [Fact]
    public void A_session_keeps_its_groups_across_runs_and_a_failed_run()
    {
        var config = ParallelConfig.Parse("t3k_cfg2_sp2_tp2");
        using var session = InProcessLauncher.Open(DeviceMesh.Create(config.Mesh));
        var first = session.Run(rank => rank.Place(config).Tp).Results;

        var failing = () => session.Run(launched =>
        {
            var rank = launched.Place(config);
            if (rank.Id == 3) throw new InvalidOperationException("rank 3 broke");
            using var x = ones(2);
            using var sum = rank.Tp.AllReduce(x);
            return 0;
        });
        failing.Should().Throw<InvalidOperationException>().WithMessage("rank 3 broke");

        var after = session.Run(launched =>
        {
            var rank = launched.Place(config);
            using var id = tensor(new float[] { rank.Id.Value });
            using var all = rank.Tp.AllGather(id, 0);
            return (Group: rank.Tp, Gathered: Ints(all));
        }).Results;
        after.Select(a => a.Group).Should().Equal(first, (a, b) => ReferenceEquals(a, b), "the session hands out the same groups every run");
        after[3].Gathered.Should().Equal(2, 3);
    }

    static int[] Ints(Tensor t) => t.data<float>().Select(v => (int)v).ToArray();

    static int[] Ints(IEnumerable<DeviceId> ids) => ids.Select(d => d.Value).ToArray();

    sealed class NoCommunicator : ICommunicator
    {
        public IProcessGroup Group(string label, IReadOnlyList<DeviceId> members, DeviceId self) => throw new NotSupportedException();
        public CollectiveStats Traffic(DeviceId self, string label) => throw new NotSupportedException();
        public IReadOnlyDictionary<string, CollectiveStats> TrafficOf(DeviceId self) => throw new NotSupportedException();
    }
}
