using Sd35.Profiling;
using System.CommandLine;
using System.Globalization;
using System.Text;
using Sd35.Perf.Harness;

namespace Sd35.Perf.Report;

/// <summary>
/// <c>report --baseline A --current B [--out DIR] [--history DIR] [--threshold 0.10] [--test mannwhitney|welch] [--alpha 0.05]</c>:
/// compares two result sets section by section, writes <c>report.md</c> and PNG charts to DIR (default
/// TestResults/perf-report) and returns 1 when anything got slower beyond the threshold, 0 otherwise, 2 on an unreadable
/// result set.
/// </summary>
public static class ReportCommand
{
    public static Command Command()
    {
        var baseline = new Option<string>("--baseline") { Description = "The baseline result set.", HelpName = "file|folder", Required = true };
        var current = new Option<string>("--current") { Description = "The current result set.", HelpName = "file|folder", Required = true };
        var output = new Option<string>("--out") { Description = "Where report.md and its charts go.", HelpName = "folder", DefaultValueFactory = _ => Path.Combine(RepoPaths.Root, "TestResults", "perf-report") };
        var history = new Option<string?>("--history") { Description = "A folder of earlier perf-run JSONs to chart over time.", HelpName = "folder" };
        history.Validators.Add(r =>
        {
            if (r.Tokens.Count > 0 && !Directory.Exists(r.Tokens[^1].Value)) r.AddError($"--history '{r.Tokens[^1].Value}' is not a folder");
        });
        var defaults = new ComparisonOptions();
        var threshold = Fraction("--threshold", "Relative change that counts as slower or faster", defaults.Threshold);
        var alpha = Fraction("--alpha", "Significance level of the equivalence test", defaults.Alpha);
        var test = new Option<string>("--test") { Description = "The two-sample test.", DefaultValueFactory = _ => defaults.Test, HelpName = "mannwhitney|welch" };
        test.AcceptOnlyFromAmong("mannwhitney", "welch");
        var command = new Command("report", "Compares two result sets section by section into report.md and charts; exit code 1 when something got slower.")
        {
            baseline, current, output, history, threshold, alpha, test,
        };
        command.SetAction(r => Run(
            new ReportArguments(r.GetValue(baseline)!, r.GetValue(current)!, r.GetValue(output)!, r.GetValue(history),
                new ComparisonOptions(r.GetValue(test)!, r.GetValue(threshold), r.GetValue(alpha))),
            Console.Out, Console.Error));
        return command;
    }

    static Option<double> Fraction(string name, string description, double defaultValue) => new(name)
    {
        Description = $"{description}, between 0 and 1.",
        HelpName = "ratio",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r =>
        {
            if (r.Tokens.Count == 0) return defaultValue;
            var text = r.Tokens[^1].Value;
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && v < 1) return v;
            r.AddError($"{name} must be a number between 0 and 1, got '{text}'");
            return defaultValue;
        },
    };

    public static int Run(ReportArguments parsed, TextWriter output, TextWriter error)
    {
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
            error.WriteLine($"error: {e.Message}");
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

/// <summary>The report command's arguments, checked by its command line before any file is read.</summary>
public sealed record ReportArguments(string Baseline, string Current, string Out, string? History, ComparisonOptions Options);
