using Sd35.Profiling;
using FluentAssertions;
using Sd35.CostModeling;
using Sd35.Mesh;
using Xunit.Abstractions;

namespace Sd35.Tests.CostModel;

/// <summary>
/// The prediction is tied to the code: the collectives a full-size dry run records for one denoising step of
/// t3k_cfg2_sp2_tp2 are exactly what the sharding scheme implies (README "How the mesh works"). A change that adds
/// or drops a collective, or changes what it carries, fails here and moves the prediction.
/// </summary>
public sealed class CollectiveBytesTests(ITestOutputHelper output)
{
    [Fact]
    public void T3k_step_collectives_are_what_the_sharding_scheme_implies()
    {
        var workload = Workload.Sd35Large;
        var run = CostModeling.CostModel.Run(ParallelConfig.Parse("t3k_cfg2_sp2_tp2"), workload);
        var device = run.Devices[0];
        var step = device.Collectives.Where(c => c.Section == PerfSections.Step).ToArray();

        const int sp = 2, tp = 2, bytes = 2;
        int blocks = workload.Transformer.NumLayers, heads = workload.Transformer.NumAttentionHeads, headDim = workload.Transformer.AttentionHeadDim;
        long d = workload.Transformer.InnerDim, n = workload.ImageTokens / sp, l = workload.PromptTokens;
        long image = n * d / tp * bytes, prompt = l * d / tp * bytes;
        long kvBlock = (long)heads / tp * n * headDim * bytes;

        // tp AllGather: per block the normed image and prompt (before q/k/v), the heads of both (before the output
        // projections; the last block has no prompt output) and the MLP inputs of both (no prompt MLP in the last);
        // then the sp-gathered image once more on tp for the output head.
        var gathers = step.Where(c => c.Label == "tp" && c.Op == "AllGather").ToArray();
        gathers.Should().HaveCount(6 * (blocks - 1) + 4 + 1);
        gathers.Sum(c => c.MessageBytes).Should().Be((blocks - 1) * 3 * (image + prompt) + 3 * image + prompt + sp * image);
        // tp ReduceScatter: the MLP down projections (image every block, prompt all but the last).
        var scatters = step.Where(c => c.Label == "tp" && c.Op == "ReduceScatter").ToArray();
        scatters.Should().HaveCount(2 * blocks - 1);
        scatters.Sum(c => c.MessageBytes).Should().Be(blocks * tp * image + (blocks - 1) * tp * prompt);
        // tp AllReduce: two per distributed LayerNorm (mean, then centred variance): 4 norms per block, 3 in the last.
        step.Count(c => c.Label == "tp" && c.Op == "AllReduce").Should().Be(2 * (4 * (blocks - 1) + 3));
        // sp ring: K and V blocks, sp − 1 passes per block, posted asynchronously.
        var ring = step.Where(c => c.Label == "sp" && c.Op == "SendReceive").ToArray();
        ring.Should().HaveCount(2 * (sp - 1) * blocks).And.OnlyContain(c => c.Async && c.MessageBytes == kvBlock);
        // sp AllGather of the image before the output head, and one cfg exchange of the prediction per step.
        step.Where(c => c.Label == "sp" && c.Op == "AllGather").Should().ContainSingle().Which.MessageBytes.Should().Be(image);
        step.Where(c => c.Label == "cfg").Should().ContainSingle().Which.MessageBytes.Should().Be(16L * 128 * 128 * bytes);
        step.Should().HaveCount(gathers.Length + scatters.Length + 2 * (4 * (blocks - 1) + 3) + ring.Length + 2);

        output.WriteLine($"per step on device 0: {step.Length} collectives, {step.Sum(c => c.MessageBytes) / 1e6:F1} MB of messages " +
                         $"(tp AllGather {gathers.Sum(c => c.MessageBytes) / 1e6:F1} MB, ReduceScatter {scatters.Sum(c => c.MessageBytes) / 1e6:F1} MB, ring {ring.Sum(c => c.MessageBytes) / 1e6:F1} MB)");
    }
}
