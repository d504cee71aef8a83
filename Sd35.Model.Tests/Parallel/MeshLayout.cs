using Sd35.Mesh;
using static TorchSharp.torch;

namespace Sd35.Tests.Parallel;

/// <summary>
/// Lays reference inputs out the way the parallel MMDiT expects them on a rank (image tokens split over sp,
/// features over tp) and gathers rank outputs back with the collectives, for comparison with one device.
/// </summary>
static class MeshLayout
{
    public static Tensor Shard(Tensor full, IProcessGroup group, long dim)
    {
        if (dim < 0) dim += full.dim();
        long size = full.shape[dim] / group.Size;
        return full.narrow(dim, group.Rank * size, size).to(full.device, copy: true);
    }

    /// <summary>[B, N, D] → this rank's [B, N/sp, D/tp].</summary>
    public static Tensor ImageShard(Tensor full, MeshRank rank)
    {
        using var tokens = Shard(full, rank.Sp, 1);
        return Shard(tokens, rank.Tp, -1);
    }

    /// <summary>[B, N/sp, D/tp] → [B, N, D] on every rank: AllGather on sp, then on tp.</summary>
    public static Tensor GatherImage(Tensor local, MeshRank rank)
    {
        using var tokens = rank.Sp.AllGather(local, 1);
        return rank.Tp.AllGather(tokens, -1);
    }
}
