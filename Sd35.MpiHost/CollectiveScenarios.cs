using Sd35.Mesh;
using static TorchSharp.torch;

namespace Sd35.MpiHost;

/// <summary>
/// Every collective along both mesh axes in fp32 and bf16, plus a group that is not a mesh line (all devices in
/// reverse order): the same program on either backend, so the MPI run's results and traffic can be compared
/// with the in-process run's to the bit. Inputs are seeded by device id, shapes vary by rank where the
/// collective allows it (AllGather, Broadcast, send/receive).
/// </summary>
public static class CollectiveScenarios
{
    public static Dictionary<string, Tensor> Run(MeshRank rank)
    {
        var results = new Dictionary<string, Tensor>();
        for (int axis = 0; axis < 2; axis++)
        {
            if (rank.Mesh.Shape[axis] == 1) continue;
            var g = rank.Axis(axis);
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
                Exercise(g, rank.Id.Value, dtype, $"axis{axis}.{dtype}.", results);
        }
        var everyone = rank.Group("everyone", rank.Mesh.Ids.Reverse().ToArray());
        if (everyone.Size > 1) Exercise(everyone, rank.Id.Value, ScalarType.Float32, "everyone.", results);
        return results;
    }

    static void Exercise(IProcessGroup g, int device, ScalarType dtype, string prefix, Dictionary<string, Tensor> results)
    {
        int n = g.Size, r = g.Rank;
        Tensor In(int salt, params long[] shape) => Seeded(device + 1000 * salt, dtype, shape);
        results[prefix + "AllGather.dim1"] = g.AllGather(In(1, 2, 1 + r, 3), -2);
        results[prefix + "AllGather.dim0"] = g.AllGather(In(2, 1 + r, 3), 0);
        results[prefix + "ReduceScatter.dim1"] = g.ReduceScatter(In(3, 2, 3 * n), -1);
        results[prefix + "ReduceScatter.dim0"] = g.ReduceScatter(In(4, 2 * n, 3), 0);
        results[prefix + "AllReduce"] = g.AllReduce(In(5, 5, 7)); // 35 elements: uneven pieces
        results[prefix + "AllToAll"] = g.AllToAll(In(6, 2, 2 * n, 3), 1, 2);
        results[prefix + "AllToAll.scatter0"] = g.AllToAll(In(7, n, 3, 2), 0, 1);
        results[prefix + "Broadcast"] = g.Broadcast(In(8, 1 + r, 4), n - 1);
        results[prefix + "RingShift"] = g.RingShift(In(9, 3, 1 + r));
        results[prefix + "SendReceive.self"] = g.SendReceive(In(13, 2, 2), r, r);
        // Two exchanges open at once, in opposite directions, with a blocking collective between posting and waiting.
        using var forward = g.StartRingShift(In(10, 2, 2 + r));
        using var backward = g.StartSendReceive(In(11, 1 + r, 2), (r + n - 1) % n, (r + 1) % n);
        results[prefix + "AllReduce.between"] = g.AllReduce(In(12, 4));
        results[prefix + "Pending.forward"] = forward.Wait();
        results[prefix + "Pending.backward"] = backward.Wait();
    }

    public static Tensor Seeded(int seed, ScalarType dtype, params long[] shape)
    {
        using var generator = new Generator((ulong)(1000 + seed));
        using var values = randn(shape, generator: generator);
        return values.to(dtype, copy: true);
    }
}
