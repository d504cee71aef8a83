using Sd35.Profiling;
using ScottPlot;
using Sd35.Perf.Harness;

namespace Sd35.Perf.Report;

/// <summary>The report's charts (ScottPlot, PNG): sections baseline vs current, per-step time, and the history trend.</summary>
public static class ReportCharts
{
    const int Width = 900, Height = 480;

    /// <summary>Bars of each targeted section's median (baseline and current side by side, when both are in one unit), with ± one standard deviation.</summary>
    public static void Sections(string path, string title, IReadOnlyList<ComparisonRow> rows)
    {
        var plot = new Plot();
        var shown = rows.Where(r => r.Baseline is not null && r.Current is not null && r.Baseline.Unit == r.Current.Unit && PerfSections.Targeted.Contains(r.Name)).ToArray();
        var ticks = new List<Tick>();
        for (int i = 0; i < shown.Length; i++)
        {
            AddBar(plot, i * 3, shown[i].Baseline!, Colors.SteelBlue);
            AddBar(plot, i * 3 + 1, shown[i].Current!, Colors.OrangeRed);
            ticks.Add(new Tick(i * 3 + 0.5, $"{shown[i].Name}\n{PerfTargets.Label(shown[i].Unit)}"));
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        plot.Axes.Margins(bottom: 0);
        plot.Title(title);
        // Sections may carry different units (GEMM-GFLOP for denoising and total, dispatch-kop for the overhead-bound ones).
        plot.YLabel("median, in the unit under each section");
        Legend(plot, ("baseline", Colors.SteelBlue), ("current", Colors.OrangeRed));
        plot.SavePng(path, Width, Height);
    }

    /// <summary>Median of each denoising step, baseline and current.</summary>
    public static void Steps(string path, string title, IReadOnlyList<ComparisonRow> rows)
    {
        var plot = new Plot();
        var steps = rows.Where(r => PerfSections.IsStep(r.Name)).OrderBy(r => PerfSections.StepIndex(r.Name)).ToArray();
        void Line(Func<ComparisonRow, Series?> pick, Color color, string label)
        {
            var points = steps.Where(r => pick(r) is not null).ToArray();
            var scatter = plot.Add.Scatter(points.Select(r => (double)PerfSections.StepIndex(r.Name)).ToArray(),
                points.Select(r => pick(r)!.Stats.Median).ToArray(), color);
            scatter.LegendText = label;
        }
        Line(r => r.Baseline, Colors.SteelBlue, "baseline");
        Line(r => r.Current, Colors.OrangeRed, "current");
        plot.Title(title);
        plot.XLabel("denoising step");
        plot.YLabel(PerfTargets.Label(steps.FirstOrDefault()?.Unit ?? PerfTargets.SecondsUnit));
        plot.ShowLegend();
        plot.SavePng(path, Width, Height);
    }

    /// <summary>The history of one model's sections over many runs (median per run), oldest to newest.</summary>
    public static void History(string path, string title, IReadOnlyList<PerfRunResult> runs, IReadOnlyList<string> sections)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (int k = 0; k < sections.Count; k++)
        {
            var points = runs.Select((run, i) => (i, run.Section(sections[k]))).Where(p => p.Item2 is not null).ToArray();
            if (points.Length == 0) continue;
            var ys = points.Select(p => SampleStatistics.MedianOf(p.Item2!.Normalized.Samples)).ToArray();
            var scatter = plot.Add.Scatter(points.Select(p => (double)p.i).ToArray(), ys, palette.GetColor(k));
            scatter.LegendText = sections[k];
        }
        plot.Title(title);
        plot.XLabel("run (oldest → newest)");
        plot.YLabel("median in each section's unit (GEMM-GFLOP, dispatch-kop or s)");
        plot.ShowLegend();
        plot.SavePng(path, Width, Height);
    }

    static void AddBar(Plot plot, double position, Series series, Color color)
    {
        var stats = series.Stats;
        var bar = new Bar
        {
            Position = position, Value = stats.Median, FillColor = color,
            Error = stats.Std,
        };
        plot.Add.Bar(bar);
    }

    static void Legend(Plot plot, params (string Label, Color Color)[] items)
    {
        foreach (var (label, color) in items)
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = label, FillColor = color });
        plot.ShowLegend();
    }
}
