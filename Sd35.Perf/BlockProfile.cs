using System.Diagnostics;
using Sd35.Layers.Normalization;
using Sd35.Mesh;
using Sd35.Models.Transformer;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>
/// Times the parts of one real <see cref="JointTransformerBlock"/> (its own modules, called one by one) at a
/// benchmark shape, next to the whole block forward and the same-process GEMM rate: where the time goes.
/// `dotnet run -c Release --project Sd35.Perf -- parts [mmdit_small|block_sd35_large] [repeats]`.
/// </summary>
public static class BlockProfile
{
    public static void Run(string shape, int repeats)
    {
        using var noGrad = no_grad();
        using var outer = NewDisposeScope();
        manual_seed(0);
        var (config, batch, n, l) = shape switch
        {
            "mmdit_small" => (SD3TransformerConfig.FromJson(File.ReadAllText(Path.Combine(Workloads.FixturesDirectory(), "bench", "mmdit_small.config.json"))), 2L, 1024L, 154L),
            "block_sd35_large" => (SD3TransformerConfig.SD35Large, 1L, 4096L, 333L),
            _ => throw new ArgumentException($"unknown shape {shape}"),
        };
        long d = config.InnerDim;
        var block = new JointTransformerBlock(config, 0, RankContext.Single());
        foreach (var (name, p) in block.named_parameters())
            if (p.dim() >= 2) p.normal_(0, 1.0 / Math.Sqrt(p.numel() / p.shape[0]));
            else if (name.EndsWith("bias")) p.normal_(0, 0.02);
        var image = randn(batch, n, d);
        var prompt = randn(batch, l, d);
        var temb = randn(batch, d);
        using var gemm = Workloads.Create("gemm");

        double Time(string name, double flops, Action op)
        {
            op();
            var times = new double[repeats];
            var cpu = new double[repeats];
            var process = Process.GetCurrentProcess();
            for (int i = 0; i < repeats; i++)
            {
                using var s = NewDisposeScope();
                process.Refresh();
                var cpu0 = process.TotalProcessorTime;
                var watch = Stopwatch.StartNew();
                op();
                times[i] = watch.Elapsed.TotalMilliseconds;
                process.Refresh();
                cpu[i] = (process.TotalProcessorTime - cpu0).TotalMilliseconds;
            }
            Array.Sort(times);
            Array.Sort(cpu);
            double ms = times[repeats / 2];
            Console.WriteLine($"{name,-40} {ms,9:F1} ms {cpu[repeats / 2],9:F1} cpu-ms {(flops > 0 ? $"{flops / ms / 1e6,8:F1}" : "")}");
            return ms;
        }

        Console.WriteLine($"{shape}: B={batch} n={n} L={l} D={d}; load {File.ReadAllText("/proc/loadavg")[..14]}");
        Time("gemm 4096x2432x2432 baseline", gemm.Flops, gemm.Run);
        var m = block.norm1.Forward(image, temb);
        var cm = ((AdaLayerNormZero)block.norm1_context).Forward(prompt, temb);
        double total = 0;
        total += Time("norm1 (AdaLN-zero image)", 0, () => block.norm1.Forward(image, temb));
        total += Time("norm1_context", 0, () => ((AdaLayerNormZero)block.norm1_context).Forward(prompt, temb));
        double attnFlops = batch * (8.0 * d * d * (n + l) + 4.0 * (n + l) * (n + l) * d);
        total += Time("attn (projections + sdpa + out)", attnFlops, () => block.attn.Forward(m.Normed, cm.Normed));
        Time("  to_q image", 2.0 * batch * n * d * d, () => block.attn.to_q.forward(m.Normed));
        var q = block.attn.to_q.forward(m.Normed).view(batch, n, -1, 64).transpose(1, 2);
        Time("  norm_q image", 0, () => block.attn.norm_q!.forward(q));
        long j = n + l, h = d / 64;
        var qj = randn(batch, h, j, 64);
        Time("  sdpa joint", 4.0 * batch * j * j * d, () => nn.functional.scaled_dot_product_attention(qj, qj, qj));
        total += Time("residual image + gate*attn", 0, () => { _ = image + m.GateMsa.unsqueeze(1) * image; });
        total += Time("layer_norm + modulate (mlp input)", 0, () => AdaLayerNormZero.Modulate(nn.functional.layer_norm(image, [d], null, null, 1e-6), m.ShiftMlp, m.ScaleMlp));
        total += Time("ff image", 16.0 * batch * n * d * d, () => block.ff.forward(image));
        Time("  ff up + gelu", 8.0 * batch * n * d * d, () => block.ff.net[0].forward(image));
        total += Time("ff_context", 16.0 * batch * l * d * d, () => block.ff_context!.forward(prompt));
        total += Time("residual image + gate*mlp", 0, () => { _ = image + m.GateMlp.unsqueeze(1) * image; });
        Console.WriteLine($"{"sum of parts (image+prompt)",-40} {total,9:F1} ms");
        double flops = batch * (24.0 * d * d * (n + l) + 4.0 * (n + l) * (n + l) * d);
        Time("block forward", flops, () => block.Forward(image, prompt, temb));
    }
}
