using System.CommandLine;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;

namespace Sd35.Perf;

/// <summary>
/// Bytes per denoising step per device and link (sp, tp, cfg group) at full SD3.5 Large size (hidden 2432 = 38 heads
/// × 64, 38 blocks, 1024² → 4096 image tokens, 333 prompt tokens), from the collectives' own byte counters.
/// A full-size step does not fit this machine, so the step runs for real at reduced sizes and is scaled up: every
/// counter is a multilinear function of head width h, depth L and image tokens N (each collective moves a tensor
/// whose size is a product of those, plus the per-token LayerNorm statistics that do not grow with h), so eight runs
/// at h ∈ {8, 16}, L ∈ {2, 3}, N ∈ {64, 144} fix it exactly, and a ninth run (h 24, L 4, N 256) checks the fit
/// before it is trusted at h 64, L 38, N 4096. The counters are the same on every backend (the MPI tests check it).
/// </summary>
public static class StepTrafficReport
{
    /// <summary><c>step-traffic [config…]</c>.</summary>
    public static Command Command()
    {
        var configs = PerfOptions.ParallelConfigs("Parallel config ids.", "t3k_cfg2_sp2_tp2", "tg_cfg2_sp4_tp4");
        var command = new Command("step-traffic", "Bytes per denoising step per device and link (sp, tp, cfg) at full SD3.5 Large size.") { configs };
        command.SetAction(r => Run(r.GetValue(configs)!));
        return command;
    }

    const int PromptTokens = 333;
    static readonly (double Low, double High) HeadDims = (8, 16), Layers = (2, 3), Tokens = (64, 144);
    static readonly (int HeadDim, int Layers, int Tokens) Check = (24, 4, 256), Full = (64, 38, 4096);

    public static void Run(IEnumerable<string> configIds)
    {
        foreach (var id in configIds)
        {
            var config = ParallelConfig.Parse(id);
            Console.WriteLine($"\n{id} ({config}): bytes per denoising step per device, full SD3.5 Large at 1024² (fp32 activations; bf16 halves them)");
            var corners = new Dictionary<(int, int, int), Dictionary<string, (long Count, long Sent, long Received)>>();
            foreach (var h in new[] { HeadDims.Low, HeadDims.High })
                foreach (var l in new[] { Layers.Low, Layers.High })
                    foreach (var n in new[] { Tokens.Low, Tokens.High })
                        corners[((int)h, (int)l, (int)n)] = Measure(config, (int)h, (int)l, (int)n);

            var check = Measure(config, Check.HeadDim, Check.Layers, Check.Tokens);
            foreach (var (key, measured) in check)
            {
                var predicted = Extrapolate(corners, key, Check.HeadDim, Check.Layers, Check.Tokens);
                if (predicted != measured)
                    throw new InvalidOperationException($"{id} {key}: the multilinear fit predicts {predicted} at h {Check.HeadDim}, L {Check.Layers}, N {Check.Tokens}, the run measured {measured}");
            }
            Console.WriteLine($"  fit checked exactly against a run at h {Check.HeadDim}, L {Check.Layers}, N {Check.Tokens} ({check.Count} counters)");
            Console.WriteLine($"  {"link",-5} {"op",-14} {"calls",7} {"sent MiB",11} {"received MiB",13}");
            foreach (var key in check.Keys.OrderBy(k => k, StringComparer.Ordinal))
            {
                var (count, sent, received) = Extrapolate(corners, key, Full.HeadDim, Full.Layers, Full.Tokens);
                var parts = key.Split('/');
                Console.WriteLine($"  {parts[0],-5} {parts[1],-14} {count,7} {sent / 1048576.0,11:0.00} {received / 1048576.0,13:0.00}");
            }
            foreach (var link in check.Keys.Select(k => k.Split('/')[0]).Distinct())
            {
                var total = check.Keys.Where(k => k.StartsWith(link + "/")).Select(k => Extrapolate(corners, k, Full.HeadDim, Full.Layers, Full.Tokens))
                    .Aggregate((a, b) => (a.Count + b.Count, a.Sent + b.Sent, a.Received + b.Received));
                Console.WriteLine($"  {link,-5} {"total",-14} {total.Count,7} {total.Sent / 1048576.0,11:0.00} {total.Received / 1048576.0,13:0.00}");
            }
        }
    }

    /// <summary>Device 0's counters after one step, by "label/op" (every device of these configs moves the same amounts, up to uneven AllReduce pieces).</summary>
    static Dictionary<string, (long Count, long Sent, long Received)> Measure(ParallelConfig config, int headDim, int layers, int tokens)
    {
        var model = MeshStep.Sd35LargeShaped(headDim, layers);
        int latent = (int)Math.Sqrt(tokens) * model.PatchSize;
        var run = MeshRunner.Execute(config, placed =>
        {
            using var step = new MeshStep(model, placed, latent, PromptTokens);
            step.Run();
            return 0;
        }, new MeshRunOptions { IntraOpThreads = 1 });
        return run.AllTraffic[0]
            .SelectMany(l => l.Value.ByOp.Select(o => ($"{l.Key}/{o.Key}", (o.Value.Count, o.Value.BytesSent, o.Value.BytesReceived))))
            .ToDictionary(p => p.Item1, p => p.Item2);
    }

    static (long Count, long Sent, long Received) Extrapolate(
        Dictionary<(int, int, int), Dictionary<string, (long Count, long Sent, long Received)>> corners, string key, double h, double l, double n)
    {
        double count = 0, sent = 0, received = 0;
        foreach (var ((ch, cl, cn), values) in corners)
        {
            double w = Weight(ch, HeadDims, h) * Weight(cl, Layers, l) * Weight(cn, Tokens, n);
            var v = values.GetValueOrDefault(key);
            count += w * v.Count;
            sent += w * v.Sent;
            received += w * v.Received;
        }
        return ((long)Math.Round(count), (long)Math.Round(sent), (long)Math.Round(received));
    }

    /// <summary>The linear Lagrange weight of corner value <paramref name="corner"/> at <paramref name="x"/>.</summary>
    static double Weight(double corner, (double Low, double High) levels, double x) =>
        corner == levels.Low ? (levels.High - x) / (levels.High - levels.Low) : (x - levels.Low) / (levels.High - levels.Low);
}
