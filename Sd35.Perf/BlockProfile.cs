using System.CommandLine;
using System.Diagnostics;
using Sd35.Layers.Normalization;
using Sd35.Mesh;
using Sd35.Tensors.Checkpoints;
using Sd35.Models.Transformer;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>
/// Times the parts of one real <see cref="JointTransformerBlock"/> (its own modules, called one by one) at a
/// benchmark shape, next to the whole block forward and the same-process GEMM rate: where the time goes.
/// `dotnet run -c Release --project Sd35.Perf -- block-speed [mmdit_small|block_sd35_large] [--repeat N]`.
/// </summary>
public static class BlockProfile
{
    /// <summary><c>block-speed [shape] [--repeat N]</c>.</summary>
    public static Command Command()
    {
        var shape = new Argument<string>("shape") { Description = "The block's shape.", DefaultValueFactory = _ => "block_sd35_large" };
        shape.AcceptOnlyFromAmong("block_sd35_large", "mmdit_small");
        var repeat = PerfOptions.Repeat(3);
        var command = new Command("block-speed", "Times each part of one joint transformer block on its own: where a block's time goes.") { shape, repeat };
        command.SetAction(r =>
        {
            PerfProcess.ForComputeTiming();
            Run(r.GetValue(shape)!, r.GetValue(repeat));
        });
        return command;
    }

    public static void Run(string shape, int repeats)
    {
        using var noGrad = no_grad();
        using var outer = NewDisposeScope();
        manual_seed(0);
        var (config, batch, n, l) = shape switch
        {
            "mmdit_small" => (ModelConfig.Read<SD3TransformerConfig>(Harness.RepoPaths.Fixtures("bench", "mmdit_small.config.json")), 2L, 1024L, 154L),
            "block_sd35_large" => (SD3TransformerConfig.SD35Large, 1L, 4096L, 333L),
            _ => throw new ArgumentException($"unknown shape {shape}"),
        };
        long d = config.InnerDim;
        var block = new JointTransformerBlock(config, 0, MeshRank.Single());
        foreach (var (name, p) in block.named_parameters())
            if (p.dim() >= 2) p.normal_(0, 1.0 / Math.Sqrt(p.numel() / p.shape[0]));
            else if (name.EndsWith("bias")) p.normal_(0, 0.02);
        var image = randn(batch, n, d);
        var prompt = randn(batch, l, d);
        var temb = randn(batch, d);
        using var gemm = Workloads.Create("gemm");

        var process = Process.GetCurrentProcess();
        (double Wall, double Cpu) Time(Action op)
        {
            var times = new double[repeats];
            var cpu = new double[repeats];
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
            return (times[repeats / 2], cpu[repeats / 2]);
        }

        var m = block.norm1.Forward(image, temb);
        var cm = ((AdaLayerNormZero)block.norm1_context).Forward(prompt, temb);
        var q = block.attn.to_q.forward(m.Normed).view(batch, n, -1, config.AttentionHeadDim).transpose(1, 2);
        long j = n + l;
        var qj = randn(batch, d / config.AttentionHeadDim, j, config.AttentionHeadDim);
        // (name, analytic FLOPs, operation, part of the block's sum); indented names are inside the part above.
        var parts = new List<(string Name, double Flops, Action Op, bool Part)>
        {
            ("gemm 4096x2432x2432 baseline", gemm.Flops, gemm.Run, false),
            ("norm1 (AdaLN-zero, image)", 0, () => block.norm1.Forward(image, temb), true),
            ("norm1_context (AdaLN-zero, prompt)", 0, () => ((AdaLayerNormZero)block.norm1_context).Forward(prompt, temb), true),
            ("attn (projections, sdpa, out)", batch * (8.0 * d * d * j + 4.0 * j * j * d), () => block.attn.Forward(m.Normed, cm.Normed), true),
            ("  to_q image", 2.0 * batch * n * d * d, () => block.attn.to_q.forward(m.Normed), false),
            ("  norm_q image", 0, () => block.attn.norm_q?.forward(q), false),
            ("  sdpa joint", 4.0 * batch * j * j * d, () => nn.functional.scaled_dot_product_attention(qj, qj, qj), false),
            ("residual image + gate*attn", 0, () => addcmul(image, m.GateMsa.unsqueeze(1), image, 1), true),
            ("layer_norm + modulate (mlp input)", 0, () => AdaLayerNormZero.Modulate(nn.functional.layer_norm(image, [d], null, null, 1e-6), m.ShiftMlp, m.ScaleMlp), true),
            ("ff image", 16.0 * batch * n * d * d, () => block.ff.forward(image), true),
            ("  ff up + gelu", 8.0 * batch * n * d * d, () => block.ff.net[0].forward(image), false),
            ("residual image + gate*mlp", 0, () => addcmul(image, m.GateMlp.unsqueeze(1), image, 1), true),
            ("prompt: residuals, norm, ff_context", 16.0 * batch * l * d * d, () =>
            {
                addcmul(prompt, cm.GateMsa.unsqueeze(1), prompt, 1);
                var normed = AdaLayerNormZero.Modulate(nn.functional.layer_norm(prompt, [d], null, null, 1e-6), cm.ShiftMlp, cm.ScaleMlp);
                addcmul(prompt, cm.GateMlp.unsqueeze(1), block.ff_context!.forward(normed), 1);
            }, true),
        };

        Console.WriteLine($"{shape}: B={batch} n={n} L={l} D={d}; load {File.ReadAllText("/proc/loadavg")[..14]}; median of {repeats}");
        // One untimed pass first: the first calls of a shape map and fault in their memory.
        foreach (var part in parts) { using var s = NewDisposeScope(); part.Op(); part.Op(); }
        double total = 0;
        foreach (var (name, partFlops, op, isPart) in parts)
        {
            var (ms, cpuMs) = Time(op);
            if (isPart) total += ms;
            Console.WriteLine($"{name,-40} {ms,9:F1} ms {cpuMs,9:F1} cpu-ms {(partFlops > 0 ? $"{partFlops / ms / 1e6,8:F1} GFLOP/s" : "")}");
        }
        Console.WriteLine($"{"sum of the parts",-40} {total,9:F1} ms");
        double flops = batch * (24.0 * d * d * (n + l) + 4.0 * (n + l) * (n + l) * d);
        // The block's forward step by step (the same calls in the same order), each step timed, summed over the runs.
        var steps = new Dictionary<string, double>();
        for (int r = 0; r < repeats + 1; r++)
        {
            using var s = NewDisposeScope();
            var watch = Stopwatch.StartNew();
            void Step(string name) { if (r > 0) steps[name] = steps.GetValueOrDefault(name) + watch.Elapsed.TotalMilliseconds / repeats; watch.Restart(); }
            var sm = block.norm1.Forward(image, temb); Step("norm1");
            var scm = ((AdaLayerNormZero)block.norm1_context).Forward(prompt, temb); Step("norm1_context");
            var (ia, pa) = block.attn.Forward(sm.Normed, scm.Normed); Step("attn");
            var image2 = addcmul(image, sm.GateMsa.unsqueeze(1), ia, 1); Step("residual");
            var normed = AdaLayerNormZero.Modulate(nn.functional.layer_norm(image2, [d], null, null, 1e-6), sm.ShiftMlp, sm.ScaleMlp); Step("norm mlp");
            var ffo = block.ff.forward(normed); Step("ff");
            var image3 = addcmul(image2, sm.GateMlp.unsqueeze(1), ffo, 1); Step("residual");
            var prompt2 = addcmul(prompt, scm.GateMsa.unsqueeze(1), pa!, 1);
            var pn = AdaLayerNormZero.Modulate(nn.functional.layer_norm(prompt2, [d], null, null, 1e-6), scm.ShiftMlp, scm.ScaleMlp);
            var prompt3 = addcmul(prompt2, scm.GateMlp.unsqueeze(1), block.ff_context!.forward(pn), 1); Step("prompt mlp");
        }
        Console.WriteLine("block forward, step by step: " + string.Join(", ", steps.Select(kv => $"{kv.Key} {kv.Value:F1}")) + $" = {steps.Values.Sum():F1} ms");
        block.Forward(image, prompt, temb);
        var (blockMs, blockCpu) = Time(() => block.Forward(image, prompt, temb));
        Console.WriteLine($"{"block forward",-40} {blockMs,9:F1} ms {blockCpu,9:F1} cpu-ms {flops / blockMs / 1e6,8:F1} GFLOP/s");
    }
}
