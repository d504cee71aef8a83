using Sd35.Mesh;
using Sd35.Models.Transformer;
using static TorchSharp.torch;

namespace Sd35.MpiHost;

/// <summary>
/// One full-width SD3.5 Large joint block (hidden 2432, 38 heads) on a parallel config, one process per device: each
/// process holds only its shards (tp slices of every projection, its sp share of the image tokens), runs the block
/// forward, and reports its parameter bytes and its peak resident memory (VmHWM); device 0 prints every rank's.
/// </summary>
public static class BlockMemory
{
    public static string Measure(MeshRank rank, ParallelConfig config, int imageTokens)
    {
        var placed = rank.Place(config);
        var model = SD3TransformerConfig.SD35Large;
        long parameterBytes;
        using (var block = new JointTransformerBlock(model, 0, placed))
        {
            parameterBytes = block.parameters().Sum(p => p.numel() * p.element_size());
            // Written as a checkpoint load would (untouched weights would not be resident yet).
            using (no_grad())
                foreach (var p in block.parameters()) p.normal_(0, 0.02);
            using var scope = NewDisposeScope();
            manual_seed(1);
            var image = randn(1, imageTokens / placed.Sp.Size, model.InnerDim / placed.Tp.Size);
            var prompt = randn(1, 333, model.InnerDim / placed.Tp.Size);
            var temb = randn(1, model.InnerDim);
            block.Forward(image, prompt, temb);
        }
        long peak = Sd35.Diagnostics.ProcessMemory.PeakResidentBytes;
        using var mine = tensor(new[] { parameterBytes, peak });
        using var all = rank.Group("everyone", rank.Mesh.Ids).AllGather(mine.unsqueeze(0), 0);
        var rows = Enumerable.Range(0, (int)all.shape[0]).Select(r =>
            $"  rank {r}: parameters {all[r, 0].item<long>() / 1048576.0:0} MiB, peak resident {all[r, 1].item<long>() / 1048576.0:0} MiB");
        return $"{config.Id}: one full-width SD3.5 Large block, {imageTokens} image + 333 prompt tokens, fp32, one process per device\n" + string.Join("\n", rows);
    }
}
