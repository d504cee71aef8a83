using FluentAssertions;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using static Sd35.Tests.Mesh.MeshTestTensors;

namespace Sd35.Tests.Mesh;

/// <summary>
/// Byte accounting for the cost model: per device and group label, what crossed to or from other devices,
/// matching bandwidth-optimal algorithms (n = 4 ranks along the t3k mesh's rows, a 96-byte fp32 tensor).
/// </summary>
[Collection(MeshRunCollection.Name)]
public class CollectiveTrafficTests
{
    const long Tensor = 4 * 6 * sizeof(float);

    static CollectiveOpStats Traffic(string op, int device, Action<IProcessGroup, MeshRank> program)
    {
        var run = MeshRunner.Execute(DeviceMesh.Create(2, 4), rank =>
        {
            program(rank.Axis(1), rank);
            return 0;
        });
        run.Traffic(device, "axis0").Total.Count.Should().Be(0, "nothing ran along the other axis");
        return run.Traffic(device, "axis1")[op];
    }

    [Fact]
    public void AllGather_sends_the_shard_to_each_of_the_others() =>
        Traffic("AllGather", 5, (g, r) => g.AllGather(Seeded(r.Id.Value, 4, 6), 0).Dispose())
            .Should().Be(new CollectiveOpStats(1, 3 * Tensor, 3 * Tensor));

    [Fact]
    public void ReduceScatter_moves_all_but_the_own_chunk() =>
        Traffic("ReduceScatter", 5, (g, r) => g.ReduceScatter(Seeded(r.Id.Value, 4, 6), 0).Dispose())
            .Should().Be(new CollectiveOpStats(1, 3 * Tensor / 4, 3 * Tensor / 4));

    [Fact]
    public void AllReduce_moves_twice_n_minus_one_over_n_like_a_ring() =>
        Traffic("AllReduce", 5, (g, r) => g.AllReduce(Seeded(r.Id.Value, 4, 6)).Dispose())
            .Should().Be(new CollectiveOpStats(1, 2 * 3 * Tensor / 4, 2 * 3 * Tensor / 4));

    [Fact]
    public void AllToAll_moves_all_but_the_own_chunk() =>
        Traffic("AllToAll", 5, (g, r) => g.AllToAll(Seeded(r.Id.Value, 4, 6), 0, 1).Dispose())
            .Should().Be(new CollectiveOpStats(1, 3 * Tensor / 4, 3 * Tensor / 4));

    [Fact]
    public void RingShift_sends_and_receives_one_tensor() =>
        Traffic("SendReceive", 5, (g, r) => g.RingShift(Seeded(r.Id.Value, 4, 6)).Dispose())
            .Should().Be(new CollectiveOpStats(1, Tensor, Tensor));

    [Fact]
    public void Broadcast_costs_the_root_n_minus_one_sends_and_the_others_one_receive()
    {
        var run = MeshRunner.Execute(DeviceMesh.Create(2, 4), rank =>
        {
            rank.Axis(1).Broadcast(Seeded(rank.Id.Value, 4, 6), 0).Dispose();
            rank.Axis(1).Broadcast(Seeded(rank.Id.Value, 4, 6), 0).Dispose();
            return 0;
        });
        run.Traffic(4, "axis1")["Broadcast"].Should().Be(new CollectiveOpStats(2, 2 * 3 * Tensor, 0));
        run.Traffic(6, "axis1")["Broadcast"].Should().Be(new CollectiveOpStats(2, 0, 2 * Tensor));
        run.AllTraffic[6]["axis1"].Total.Should().Be(new CollectiveOpStats(2, 0, 2 * Tensor));
    }

    [Fact]
    public void Placed_groups_account_under_sp_tp_and_cfg()
    {
        var config = ParallelConfig.Parse("t3k_cfg2_sp2_tp2");
        var run = MeshRunner.Execute(config, rank =>
        {
            rank.Sp.AllGather(Seeded(rank.Id.Value, 4, 6), 0).Dispose();
            rank.Tp.ReduceScatter(Seeded(rank.Id.Value, 4, 6), 0).Dispose();
            rank.Cfg.SendReceive(Seeded(rank.Id.Value, 4, 6), 1 - rank.CfgIndex, 1 - rank.CfgIndex).Dispose();
            return 0;
        });
        run.Traffic(5, "sp").Total.Should().Be(new CollectiveOpStats(1, Tensor, Tensor));
        run.Traffic(5, "tp").Total.Should().Be(new CollectiveOpStats(1, Tensor / 2, Tensor / 2));
        run.Traffic(5, "cfg").Total.Should().Be(new CollectiveOpStats(1, Tensor, Tensor));
    }
}
