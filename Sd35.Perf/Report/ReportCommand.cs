using Sd35.Profiling;
using System.Globalization;
using System.Text;
using Sd35.Perf.Harness;

namespace Sd35.Perf.Report;

/// <summary>
/// <c>report --baseline A --current B [--out DIR] [--history DIR] [--threshold 0.10] [--test mannwhitney|welch] [--alpha 0.05]</c>:
/// compares two result sets section by section, writes <c>report.md</c> and PNG charts to DIR (default
/// TestResults/perf-report) and returns 1 when anything got slower beyond the threshold, 0 otherwise, 2 on bad input.
/// </summary>
public static class ReportCommand
{
    public const string Usage = """
        report --baseline <file|folder> --current <file|folder> [--out <folder>] [--history <folder>]
               [--threshold <ratio, default 0.10>] [--test mannwhitney|welch] [--alpha <default 0.05>]
          A result set is a perf-run JSON (TestResults/perf/*.json), a BenchmarkDotNet *-report-full.json, or a folder of them.
          Exit code: 0 nothing slower, 1 something slower beyond the threshold, 2 bad arguments or input.
        """;

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        ReportArguments parsed;
        try
        {
            parsed = ReportArguments.Parse(args);
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"report: {e.Message}");
            error.WriteLine(Usage);
            return 2;
        }
        try
        {
            var baseline = ResultSet.Load(parsed.Baseline);
            var current = ResultSet.Load(parsed.Current);
            var rows = Comparison.Compare(baseline, current, parsed.Options);
            Directory.CreateDirectory(parsed.Out);
            var markdown = Write(parsed, baseline, current, rows);
            var path = Path.Combine(parsed.Out, "report.md");
            File.WriteAllText(path, markdown);
            int slower = rows.Count(r => r.Verdict == Verdict.Slower);
            output.WriteLine(markdown);
            output.WriteLine($"wrote {path}");
            return slower > 0 ? 1 : 0;
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidDataException or DirectoryNotFoundException or System.Text.Json.JsonException)
        {
            error.WriteLine($"report: {e.Message}");
            return 2;
        }
    }

    static string Write(ReportArguments args, ResultSet baseline, ResultSet current, IReadOnlyList<ComparisonRow> rows)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine("# Perf regression report");
        text.AppendLine();
        text.AppendLine(Inv($"Baseline `{baseline.Source}`, current `{current.Source}`. Test: {args.Options.Test} equivalence test ") +
            Inv($"(current vs baseline ± {args.Options.Threshold:P0}, α = {args.Options.Alpha}); a change inside the threshold or not significant is *same*. ") +
            "Perf-run sections are compared in their target's unit (GEMM-GFLOP = seconds × the same-process GEMM rate; dispatch-kop = " +
            "seconds × the same-process dispatch rate / 1000), BenchmarkDotNet benchmarks in seconds.");
        text.AppendLine();
        text.AppendLine(Inv($"**{rows.Count(r => r.Verdict == Verdict.Slower)} slower, {rows.Count(r => r.Verdict == Verdict.Faster)} faster, ") +
            Inv($"{rows.Count(r => r.Verdict == Verdict.Same)} same, {rows.Count(r => r.Verdict == Verdict.NotComparable)} not comparable.**"));
        text.AppendLine();
        text.AppendLine("| run | commit | CPU | GEMM GFLOP/s | load | when |");
        text.AppendLine("| --- | --- | --- | --- | --- | --- |");
        foreach (var (label, set) in new[] { ("baseline", baseline), ("current", current) })
            foreach (var run in set.Runs)
                text.AppendLine(Inv($"| {label}: {run.MlModelName} | {PerfTable.Short(run.Machine.GitCommit)} | {run.Machine.Cpu}, {run.Machine.TorchThreads} threads | ") +
                    Inv($"{string.Join("/", run.Machine.GemmGflops.Select(g => g.ToString("F0", c)))} | {run.Machine.LoadBefore} | {run.RunStartTs.UtcDateTime:yyyy-MM-dd HH:mm} UTC |"));
        foreach (var group in rows.GroupBy(r => r.Group))
        {
            text.AppendLine();
            text.AppendLine(c, $"## {group.Key}");
            text.AppendLine();
            text.AppendLine("| section | unit | baseline median (n) | current median (n) | current / baseline | verdict |");
            text.AppendLine("| --- | --- | ---: | ---: | ---: | --- |");
            foreach (var r in group)
                text.AppendLine(c, $"| {r.Name} | {r.Unit} | {Median(r.Baseline)} | {Median(r.Current)} | {(double.IsNaN(r.Ratio) ? "" : r.Ratio.ToString("F3", c))} | {Label(r)} |");
            if (group.Any(r => r.Baseline is not null && r.Current is not null && PerfSections.Targeted.Contains(r.Name)))
            {
                string stem = FileStem(group.Key);
                ReportCharts.Sections(Path.Combine(args.Out, $"{stem}_sections.png"), group.Key, group.ToArray());
                text.AppendLine();
                text.AppendLine(c, $"![sections]({stem}_sections.png)");
                if (group.Any(r => PerfSections.IsStep(r.Name)))
                {
                    ReportCharts.Steps(Path.Combine(args.Out, $"{stem}_steps.png"), $"{group.Key}: per-step", group.ToArray());
                    text.AppendLine(c, $"![per-step]({stem}_steps.png)");
                }
            }
        }
        if (args.History is not null)
        {
            text.AppendLine();
            text.AppendLine(c, $"## History (`{args.History}`)");
            text.AppendLine();
            foreach (var model in ResultSet.History(args.History).GroupBy(r => $"{r.MlModelName}_{r.RunType}"))
            {
                var runs = model.ToArray();
                string stem = FileStem(model.Key) + "_history";
                ReportCharts.History(Path.Combine(args.Out, $"{stem}.png"), $"{model.Key}: {runs.Length} runs", runs,
                    [PerfSections.Total, PerfSections.Denoising, PerfSections.TotalEncoding, PerfSections.Vae]);
                text.AppendLine(c, $"![{model.Key} history]({stem}.png)");
            }
        }
        return text.ToString();
    }

    static string Median(Series? s) => s is null ? "" : FormattableString.Invariant($"{s.Stats.Median:G4} ({s.Samples.Count})");

    static string Label(ComparisonRow r) => r.Verdict switch
    {
        Verdict.Slower => "**slower**",
        Verdict.Faster => "faster",
        Verdict.Same => r.Note.Length > 0 ? $"same ({r.Note})" : "same",
        _ => r.Note,
    };

    static string Inv(FormattableString s) => FormattableString.Invariant(s);


    static string FileStem(string key) =>
        new string(key.Select(ch => char.IsLetterOrDigit(ch) || ch is '_' or '-' ? ch : '_').ToArray()).Trim('_');
}

/// <summary>The report command's arguments, checked before any file is read.</summary>
public sealed record ReportArguments(string Baseline, string Current, string Out, string? History, ComparisonOptions Options)
{
    public static ReportArguments Parse(IReadOnlyList<string> args)
    {
        string? baseline = null, current = null, history = null;
        string output = Path.Combine(RepoPaths.Root, "TestResults", "perf-report");
        var options = new ComparisonOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"option {name} needs a value");
            switch (name)
            {
                case "--baseline": baseline = Value(); break;
                case "--current": current = Value(); break;
                case "--out": output = Value(); break;
                case "--history": history = Value(); break;
                case "--threshold": options = options with { Threshold = Fraction(name, Value()) }; break;
                case "--alpha": options = options with { Alpha = Fraction(name, Value()) }; break;
                case "--test":
                    options = options with { Test = Value().ToLowerInvariant() };
                    _ = options.TwoSampleTest;
                    break;
                default: throw new ArgumentException($"unknown option '{name}'");
            }
        }
        if (baseline is null || current is null) throw new ArgumentException("--baseline and --current are both required");
        if (history is not null && !Directory.Exists(history)) throw new ArgumentException($"--history '{history}' is not a folder");
        return new ReportArguments(baseline, current, output, history, options);
    }

    static double Fraction(string name, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && v < 1
            ? v : throw new ArgumentException($"{name} must be a number between 0 and 1, got '{text}'");
}
