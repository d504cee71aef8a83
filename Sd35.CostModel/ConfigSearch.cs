using Sd35.CostModeling.Systems;
using Sd35.Mesh;

namespace Sd35.CostModeling;

/// <summary>One candidate plan with its prediction.</summary>
public sealed record RankedConfig(ParallelConfig Config, string Name, int PaddedHeads, ImagePrediction Prediction);

/// <summary>
/// Every valid parallel config for a system's mesh and the workload — cfg 1 or 2 on either axis, sp and tp factors on
/// the remaining extents and axes, heads zero-padded when tp does not divide them — each dry-run at full size and
/// ranked by predicted seconds per image. A switched node (GPUs) has no physical axes, so every rows × cols layout of
/// its devices is tried.
/// </summary>
public static class ConfigSearch
{
    public static IReadOnlyList<ParallelConfig> ValidConfigs(MeshShape mesh, Workload workload)
    {
        var found = new Dictionary<string, ParallelConfig>();
        int[] Divisors(int n) => Enumerable.Range(1, n).Where(d => n % d == 0).ToArray();
        foreach (int cfg in workload.Guided ? new[] { 1, 2 } : [1])
            foreach (int cfgAxis in new[] { 0, 1 })
                foreach (int sp in Divisors(mesh.Size))
                    foreach (int spAxis in new[] { 0, 1 })
                        foreach (int tp in Divisors(mesh.Size))
                            foreach (int tpAxis in new[] { 0, 1 })
                            {
                                // A factor of one has no axis: keep one spelling of each plan.
                                if ((cfg == 1 && cfgAxis == 1) || (sp == 1 && spAxis == 1) || (tp == 1 && tpAxis == 1)) continue;
                                ParallelConfig config;
                                try { config = new ParallelConfig(mesh, (cfg, cfgAxis), (sp, spAxis), (tp, tpAxis)); }
                                catch (ArgumentException) { continue; }
                                if (!FitsModel(config, workload)) continue;
                                found.TryAdd(ConfigSpec.Format(config), config);
                            }
        return found.Values.ToArray();
    }

    static bool FitsModel(ParallelConfig config, Workload workload)
    {
        try { config.ValidateFor(workload.ImageTokens, workload.Transformer.NumAttentionHeads, workload.Transformer.InnerDim); }
        catch (ArgumentException) { return false; }
        // The text encoders and the VAE run tensor parallel on a cfg submesh: all of it up to four devices, else
        // each of its rows (StagePlacement); their heads and GroupNorm groups must split over that group.
        int encoderTp = config.Submesh.Size <= 4 ? config.Submesh.Size : config.Submesh.Cols;
        int[] mustDivide = [workload.ClipL.NumAttentionHeads, workload.ClipG.NumAttentionHeads, workload.Vae.NormNumGroups, .. workload.T5 is { } t5 ? [t5.NumHeads] : Array.Empty<int>()];
        return mustDivide.All(n => n % encoderTp == 0);
    }

    public static IReadOnlyList<MeshShape> Layouts(SystemSpec system) =>
        system.Switched
            ? Enumerable.Range(1, system.Devices).Where(r => system.Devices % r == 0).Select(r => new MeshShape(r, system.Devices / r)).Where(s => s.Rows <= s.Cols).ToArray()
            : [new MeshShape(system.MeshRows, system.MeshCols)];

    /// <summary>Every valid config on <paramref name="system"/>, fastest first.</summary>
    public static IReadOnlyList<RankedConfig> Rank(SystemSpec system, Workload workload, int steps, ModelFactors factors, Action<string>? progress = null)
    {
        var ranked = new List<RankedConfig>();
        foreach (var layout in Layouts(system))
            foreach (var config in ValidConfigs(layout, workload))
            {
                progress?.Invoke($"dry run {ConfigSpec.Format(config)}");
                DryRunResult run;
                try { run = CostModel.Run(config, workload); }
                catch (ArgumentException e)
                {
                    // A plan the code itself refuses is not a plan; say so and go on.
                    progress?.Invoke($"  skipped: {e.Message}");
                    continue;
                }
                var prediction = ImagePrediction.From(run, system, factors, steps);
                ranked.Add(new RankedConfig(config, config.Id ?? ConfigSpec.Format(config), config.PaddedHeads(workload.Transformer.NumAttentionHeads), prediction));
            }
        return ranked.OrderBy(r => r.Prediction.TotalSeconds).ToArray();
    }

    public static string Table(IReadOnlyList<RankedConfig> ranked)
    {
        var lines = new List<string>
        {
            "| rank | config | heads | encoding s | step s | denoising s | vae s | total s |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        };
        int i = 1;
        foreach (var r in ranked)
        {
            var p = r.Prediction;
            lines.Add($"| {i++} | {r.Name} | {r.PaddedHeads} | {p[ImagePrediction.Encoding]:F3} | {p.StepSeconds:F4} | {p[ImagePrediction.Denoising]:F2} | {p[ImagePrediction.Vae]:F3} | {p.TotalSeconds:F2} |");
        }
        return string.Join(Environment.NewLine, lines);
    }

    /// <summary>What-ifs on one plan: how far each change moves the predicted image time.</summary>
    public static IReadOnlyList<(WhatIf WhatIf, ImagePrediction Prediction)> WhatIfs(ParallelConfig config, SystemSpec system, Workload workload, int steps, ModelFactors factors)
    {
        WhatIf[] cases =
        [
            new(),
            new(LinkBandwidthScale: 2, Name: "2× link bandwidth"),
            new(LinkBandwidthScale: 4, Name: "4× link bandwidth"),
            new(OverlapBlockingCollectives: true, Name: "tp collectives hidden behind compute"),
            new(OpOverheadScale: 0, Name: "no per-op overhead"),
            new(LinkBandwidthScale: 4, OverlapBlockingCollectives: true, OpOverheadScale: 0, Name: "all three"),
        ];
        var run = CostModel.Run(config, workload);
        var list = cases.Select(w => (w, ImagePrediction.From(run, system, factors, steps, w))).ToList();
        list.Add((new WhatIf(ComputeScale: 1.5, Name: "compute efficiency ×1.5"), ImagePrediction.From(run, system, factors, steps, new WhatIf(ComputeScale: 1.5, Name: "compute efficiency ×1.5"))));
        return list;
    }
}
