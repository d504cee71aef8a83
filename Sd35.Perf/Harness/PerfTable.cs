using System.Globalization;
using System.Text;

namespace Sd35.Perf.Harness;

/// <summary>The reference perf test's printout: mean/std/min/max per section, steps/s, images/s, % breakdown, targets.</summary>
public static class PerfTable
{
    public static string Markdown(PerfRunResult run)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        var p = run.ConfigParams;
        text.AppendLine(c, $"### {run.MlModelName} ({run.RunType}, {run.ModelScale}, {p.Width}×{p.Height}, {p.NumSteps} steps, {p.TimedRuns} timed runs)");
        text.AppendLine();
        text.AppendLine(c, $"{run.Machine.Cpu}, {run.Machine.TorchThreads} threads, GEMM {Join(run.Machine.GemmGflops, "F0")} GFLOP/s, load {run.Machine.LoadBefore} → {run.Machine.LoadAfter}, commit {Short(run.Machine.GitCommit)}");
        text.AppendLine();
        if (run.Machine.DispatchRates.Count > 0)
        {
            text.AppendLine(c, $"dispatch probe ({run.Machine.DispatchShape}): {Join(run.Machine.DispatchRates.Select(r => r / 1000), "F1")} k hand-offs/s; " +
                $"CPU busy during the runs {Join(run.Machine.CpuBusy, "F2")} of {run.Machine.LogicalCores} cores, other processes {Join(run.Machine.OthersBusy, "F2")} cores");
            text.AppendLine();
        }
        text.AppendLine("| section | mean s | std s | min s | max s | median GEMM-GFLOP | median dispatch-kop | target | limit | pass |");
        text.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var s in run.Sections)
        {
            string normalized = s.GemmGflop.Count > 0 ? SampleStatistics.MedianOf(s.GemmGflop).ToString("F2", c) : "";
            string dispatched = s.DispatchKop.Count > 0 ? SampleStatistics.MedianOf(s.DispatchKop).ToString("F2", c) : "";
            string target = s.Target is null ? "" : $"{s.Target.Value.ToString("G4", c)} {PerfTargets.Label(s.Target.Unit)}";
            string limit = s.Target is null ? "" : s.Target.Range(c);
            string pass = s.NotApplicable is { } why ? $"n/a ({why})" : s.Pass switch { true => "pass", false => "**FAIL**", null => "" };
            text.AppendLine(FormattableString.Invariant($"| {s.Name} | {s.Stats.Mean:F4} | {s.Stats.Std:F4} | {s.Stats.Min:F4} | {s.Stats.Max:F4} | {normalized} | {dispatched} | {target} | {limit} | {pass} |"));
        }
        text.AppendLine();
        var sum = run.Summary;
        var breakdown = string.Join(", ", sum.BreakdownPercent.Select(kv => $"{kv.Key} {kv.Value.ToString("F1", c)} %"));
        text.AppendLine(FormattableString.Invariant(
            $"steps/s {sum.StepsPerSecond:F3}, images/s {sum.ImagesPerSecond:F3}, loading {sum.LoadSeconds:F3} s per generation (outside total); breakdown of total: {breakdown}"));
        return text.ToString();
    }

    static string Join(IEnumerable<double> values, string format) => string.Join("/", values.Select(v => v.ToString(format, CultureInfo.InvariantCulture)));
    /// <summary>A commit's first ten characters, as the tables and reports show it.</summary>
    public static string Short(string commit) => commit.Length > 10 ? commit[..10] : commit;
}
