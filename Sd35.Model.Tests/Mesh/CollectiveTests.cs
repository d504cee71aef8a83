using FluentAssertions;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using static Sd35.Tests.Mesh.MeshTestTensors;
using static TorchSharp.torch;

namespace Sd35.Tests.Mesh;

/// <summary>
/// Every collective of the in-process backend against a direct computation on the test thread, along each axis
/// of several meshes (the 2x4 t3k mesh included). Reductions must match the rank-order sum to the bit.
/// </summary>
[Collection(MeshRunCollection.Name)]
public class CollectiveTests
{
    public static TheoryData<int, int, int> MeshAxes => new()
    {
        { 1, 2, 1 }, { 2, 1, 0 }, { 2, 2, 0 }, { 2, 2, 1 }, { 1, 4, 1 }, { 2, 4, 0 }, { 2, 4, 1 },
    };

    /// <summary>Runs <paramref name="op"/> on every rank with its group along <paramref name="axis"/>; results by device id.</summary>
    static (DeviceMesh Mesh, Tensor[] Results) OnAxis(int rows, int cols, int axis, Func<IProcessGroup, MeshRank, Tensor> op)
    {
        var mesh = DeviceMesh.Create(rows, cols);
        return (mesh, MeshRunner.Run(mesh, rank => op(rank.Axis(axis), rank)));
    }

    static IReadOnlyList<int> Members(DeviceMesh mesh, int device, int axis) => mesh.Line(mesh.CoordOf(device), axis).Numbers();

    static Tensor SumInOrder(IEnumerable<Tensor> parts)
    {
        Tensor? acc = null;
        foreach (var p in parts)
            if (acc is null) acc = p.clone();
            else acc.add_(p);
        return acc!;
    }

    [Theory]
    [MemberData(nameof(MeshAxes))]
    public void AllGather_concatenates_uneven_shards_in_rank_order(int rows, int cols, int axis)
    {
        Tensor Input(int device, int groupRank) => Seeded(device, 2, 1 + groupRank, 3);
        var (mesh, results) = OnAxis(rows, cols, axis, (g, rank) => g.AllGather(Input(rank.Id.Value, g.Rank), -2));
        foreach (int d in mesh.Ids.Numbers())
        {
            var members = Members(mesh, d, axis);
            var expected = cat(members.Select((m, r) => Input(m, r)).ToArray(), 1);
            results[d].ShouldBeBitEqual(expected, $"AllGather on device {d}");
        }
    }

    [Theory]
    [MemberData(nameof(MeshAxes))]
    public void ReduceScatter_gives_each_rank_its_chunk_of_the_rank_order_sum(int rows, int cols, int axis)
    {
        int n = DeviceMesh.Create(rows, cols).Shape[axis];
        var (mesh, results) = OnAxis(rows, cols, axis, (g, rank) => g.ReduceScatter(Seeded(rank.Id.Value, 2, 3 * n), -1));
        foreach (int d in mesh.Ids.Numbers())
        {
            var members = Members(mesh, d, axis);
            int r = members.ToList().IndexOf(d);
            var sum = SumInOrder(members.Select(m => Seeded(m, 2, 3 * n)));
            results[d].ShouldBeBitEqual(sum.narrow(1, 3 * r, 3), $"ReduceScatter on device {d}");
        }
    }

    [Theory]
    [MemberData(nameof(MeshAxes))]
    public void AllReduce_gives_every_rank_the_same_bits_as_the_rank_order_sum(int rows, int cols, int axis)
    {
        // 35 elements: not divisible by 2 or 4, so the internal reduce-scatter pieces are uneven.
        var (mesh, results) = OnAxis(rows, cols, axis, (g, rank) => g.AllReduce(Seeded(rank.Id.Value, 5, 7)));
        foreach (int d in mesh.Ids.Numbers())
            results[d].ShouldBeBitEqual(SumInOrder(Members(mesh, d, axis).Select(m => Seeded(m, 5, 7))), $"AllReduce on device {d}");
    }

    [Fact]
    public void Sixteen_bit_reductions_accumulate_in_fp32_and_round_once()
    {
        var (mesh, results) = OnAxis(2, 4, 1, (g, rank) => g.AllReduce(Seeded(rank.Id.Value, ScalarType.BFloat16, 4, 33)));
        foreach (int d in mesh.Ids.Numbers())
        {
            var fp32Sum = SumInOrder(Members(mesh, d, 1).Select(m => Seeded(m, ScalarType.BFloat16, 4, 33).to(ScalarType.Float32)));
            results[d].ShouldBeBitEqual(fp32Sum.to(ScalarType.BFloat16), $"bf16 AllReduce on device {d}");
        }
    }

    [Theory]
    [MemberData(nameof(MeshAxes))]
    public void AllToAll_sends_chunk_j_to_rank_j_and_gathers_in_rank_order(int rows, int cols, int axis)
    {
        int n = DeviceMesh.Create(rows, cols).Shape[axis];
        var (mesh, results) = OnAxis(rows, cols, axis, (g, rank) => g.AllToAll(Seeded(rank.Id.Value, 2 * n, 3, 4), 0, 2));
        foreach (int d in mesh.Ids.Numbers())
        {
            var members = Members(mesh, d, axis);
            int r = members.ToList().IndexOf(d);
            var expected = cat(members.Select(m => Seeded(m, 2 * n, 3, 4).narrow(0, 2 * r, 2)).ToArray(), 2);
            results[d].ShouldBeBitEqual(expected, $"AllToAll on device {d}");
        }
    }

    [Theory]
    [MemberData(nameof(MeshAxes))]
    public void RingShift_returns_the_previous_ranks_tensor_whatever_its_shape(int rows, int cols, int axis)
    {
        var (mesh, results) = OnAxis(rows, cols, axis, (g, rank) => g.RingShift(Seeded(rank.Id.Value, 1 + g.Rank, 3)));
        foreach (int d in mesh.Ids.Numbers())
        {
            var members = Members(mesh, d, axis);
            int r = members.ToList().IndexOf(d), previous = (r + members.Count - 1) % members.Count;
            results[d].ShouldBeBitEqual(Seeded(members[previous], 1 + previous, 3), $"RingShift on device {d}");
        }
    }

    [Theory]
    [MemberData(nameof(MeshAxes))]
    public void Broadcast_gives_every_rank_the_roots_tensor(int rows, int cols, int axis)
    {
        var (mesh, results) = OnAxis(rows, cols, axis, (g, rank) => g.Broadcast(Seeded(rank.Id.Value, 3, 2), g.Size - 1));
        foreach (int d in mesh.Ids.Numbers())
            results[d].ShouldBeBitEqual(Seeded(Members(mesh, d, axis)[^1], 3, 2), $"Broadcast on device {d}");
    }

    [Fact]
    public void SendReceive_follows_any_permutation()
    {
        var (mesh, results) = OnAxis(1, 4, 1, (g, rank) => g.SendReceive(Seeded(rank.Id.Value, 2), (g.Rank + 2) % 4, (g.Rank + 2) % 4));
        foreach (int d in mesh.Ids.Numbers()) results[d].ShouldBeBitEqual(Seeded((d + 2) % 4, 2), $"SendReceive on device {d}");
    }

    /// <summary>Posted exchanges stay open across other collectives and may be waited in any order.</summary>
    [Fact]
    public void Pending_exchanges_overlap_other_collectives_without_deadlock()
    {
        var mesh = DeviceMesh.Create(2, 4);
        var results = MeshRunner.Run(mesh, rank =>
        {
            var g = rank.Axis(1);
            var a = Seeded(rank.Id.Value, 3);
            var b = Seeded(rank.Id.Value + 100, 3);
            var pendingA = g.StartRingShift(a);
            var pendingB = g.StartRingShift(b);
            var reduced = g.AllReduce(Seeded(rank.Id.Value + 200, 3));
            var gotB = pendingB.Wait();
            var gotA = pendingA.Wait();
            return (gotA, gotB, reduced);
        });
        foreach (int d in mesh.Ids.Numbers())
        {
            var members = Members(mesh, d, 1);
            int previous = members[(members.ToList().IndexOf(d) + 3) % 4];
            results[d].gotA.ShouldBeBitEqual(Seeded(previous, 3), "first exchange");
            results[d].gotB.ShouldBeBitEqual(Seeded(previous + 100, 3), "second exchange");
            results[d].reduced.ShouldBeBitEqual(SumInOrder(members.Select(m => Seeded(m + 200, 3))), "AllReduce in between");
        }
    }

    /// <summary>Groups along both axes used in one program are independent: row sums then column gather give the full picture.</summary>
    [Fact]
    public void Groups_along_both_axes_compose()
    {
        var mesh = DeviceMesh.Create(2, 4);
        var results = MeshRunner.Run(mesh, rank =>
        {
            using var rowSum = rank.Axis(1).AllReduce(Seeded(rank.Id.Value, 2));
            return rank.Axis(0).AllGather(rowSum, 0);
        });
        var expected = cat([SumInOrder(Enumerable.Range(0, 4).Select(i => Seeded(i, 2))), SumInOrder(Enumerable.Range(4, 4).Select(i => Seeded(i, 2)))], 0);
        foreach (int d in mesh.Ids.Numbers()) results[d].ShouldBeBitEqual(expected, $"device {d}");
    }

    /// <summary>
    /// After each collective every rank overwrites its input: a result that aliased another rank's memory would
    /// change. (Broadcast's root and a self-exchange may alias the caller's own tensor, which is not another rank's.)
    /// </summary>
    [Theory]
    [InlineData("AllGather")]
    [InlineData("AllToAll")]
    [InlineData("RingShift")]
    [InlineData("Broadcast")]
    [InlineData("ReduceScatter")]
    [InlineData("AllReduce")]
    public void Results_never_alias_another_ranks_memory(string op)
    {
        var mesh = DeviceMesh.Create(1, 4);
        var results = MeshRunner.Run(mesh, rank =>
        {
            var g = rank.Axis(1);
            var local = Seeded(rank.Id.Value, 4, 4);
            var result = op switch
            {
                "AllGather" => g.AllGather(local, 0),
                "AllToAll" => g.AllToAll(local, 0, 1),
                "RingShift" => g.RingShift(local),
                "Broadcast" => g.Broadcast(local, 0),
                "ReduceScatter" => g.ReduceScatter(local, 0),
                _ => g.AllReduce(local),
            };
            local.fill_(float.NaN);
            g.AllReduce(zeros(1)).Dispose(); // every rank has overwritten its input before anyone returns
            return result;
        });
        for (int d = op == "Broadcast" ? 1 : 0; d < 4; d++)
            results[d].isnan().any().item<bool>().Should().BeFalse($"{op} result on device {d} must be its own memory");
    }
}
