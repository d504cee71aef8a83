using Sd35.Profiling;
using System.Text.Json;
using Sd35.Perf.Harness;

namespace Sd35.Perf.Report;

/// <summary>
/// One measured quantity of a result set: a perf-run section (in GEMM-GFLOP when the run has GEMM rates, else
/// seconds) or a BenchmarkDotNet benchmark (seconds per operation), with every sample.
/// </summary>
public sealed record Series(string Group, string Name, string Unit, IReadOnlyList<double> Samples)
{
    public string Key => $"{Group} / {Name}";
    public SampleStatistics Stats => SampleStatistics.Of(Samples);
}

/// <summary>
/// The results compared by the report: perf-run JSON files (sd35-perf-run/1) and BenchmarkDotNet full JSON exports
/// (<c>*-report-full.json</c>), from a file or a folder. In a folder, the newest run of each model and run type counts.
/// </summary>
public sealed class ResultSet
{
    /// <summary>The pooled denoising steps of a run (every step of every timed run): the per-step comparison.</summary>
    public const string PooledSteps = "denoising_step (all)";

    public required string Source { get; init; }
    public required IReadOnlyList<PerfRunResult> Runs { get; init; }
    public required IReadOnlyList<Series> Series { get; init; }

    public static ResultSet Load(string path)
    {
        var files = File.Exists(path) ? [path]
            : Directory.Exists(path) ? Directory.EnumerateFiles(path, "*.json", SearchOption.AllDirectories).Order().ToArray()
            : throw new FileNotFoundException($"result set '{path}' is neither a file nor a folder", path);
        var runs = new List<PerfRunResult>();
        var series = new List<Series>();
        foreach (var file in files)
        {
            if (IsBenchmarkDotNetReport(file)) series.AddRange(FromBenchmarkDotNet(file));
            else if (IsPerfRun(file)) runs.Add(PerfRunResult.Load(file));
        }
        var newest = runs.GroupBy(r => (r.MlModelName, r.RunType)).Select(g => g.MaxBy(r => r.RunStartTs)!).OrderBy(r => r.MlModelName).ToArray();
        series.InsertRange(0, newest.SelectMany(FromPerfRun));
        if (series.Count == 0) throw new InvalidDataException($"result set '{path}' holds no perf-run JSON and no BenchmarkDotNet full JSON export");
        return new ResultSet { Source = path, Runs = newest, Series = series };
    }

    /// <summary>Every perf run in a folder, oldest first (the history trend).</summary>
    public static IReadOnlyList<PerfRunResult> History(string folder) =>
        Directory.EnumerateFiles(folder, "*.json", SearchOption.AllDirectories).Where(IsPerfRun).Select(PerfRunResult.Load)
            .OrderBy(r => r.RunStartTs).ToArray();

    public static IEnumerable<Series> FromPerfRun(PerfRunResult run)
    {
        string group = $"{run.MlModelName} ({run.RunType}, {run.ModelScale})";
        foreach (var section in run.Sections)
        {
            var (unit, samples) = section.Normalized;
            yield return new Series(group, section.Name, unit, samples);
        }
        var steps = run.Sections.Where(s => PerfSections.IsStep(s.Name)).ToArray();
        if (steps.Length > 0)
        {
            // Pooled in the steps' own unit when they share one, else in seconds.
            var normalized = steps.Select(s => s.Normalized).ToArray();
            bool shared = normalized.All(n => n.Unit == normalized[0].Unit);
            yield return new Series(group, PooledSteps, shared ? normalized[0].Unit : PerfTargets.SecondsUnit,
                (shared ? normalized.SelectMany(n => n.Samples) : steps.SelectMany(s => s.Seconds)).ToArray());
        }
    }

    /// <summary>
    /// BenchmarkDotNet's full JSON: each benchmark's workload iterations of the Result stage (after BenchmarkDotNet's
    /// outlier removal, as dotnet/performance's ResultsComparer reads them), as seconds per operation.
    /// </summary>
    static IEnumerable<Series> FromBenchmarkDotNet(string file)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(file));
        var title = document.RootElement.TryGetProperty("Title", out var t) ? t.GetString() ?? file : file;
        var list = new List<Series>();
        foreach (var benchmark in document.RootElement.GetProperty("Benchmarks").EnumerateArray())
        {
            var name = benchmark.GetProperty("FullName").GetString() ?? "?";
            var samples = benchmark.GetProperty("Measurements").EnumerateArray()
                .Where(m => m.GetProperty("IterationMode").GetString() == "Workload" && m.GetProperty("IterationStage").GetString() == "Result")
                .Select(m => m.GetProperty("Nanoseconds").GetDouble() / m.GetProperty("Operations").GetDouble() / 1e9)
                .ToArray();
            if (samples.Length > 0) list.Add(new Series($"BenchmarkDotNet {TitleWithoutTimestamp(title)}", name, PerfTargets.SecondsUnit, samples));
        }
        return list;
    }

    /// <summary>BenchmarkDotNet titles end in a run timestamp; drop it so the same benchmark matches across runs.</summary>
    static string TitleWithoutTimestamp(string title) =>
        System.Text.RegularExpressions.Regex.Replace(title, @"-\d{8}-\d{6}$", "");

    static bool IsBenchmarkDotNetReport(string file) => file.EndsWith("-report-full.json", StringComparison.Ordinal)
                                                        || file.EndsWith("-report-full-compressed.json", StringComparison.Ordinal);

    static bool IsPerfRun(string file)
    {
        if (IsBenchmarkDotNetReport(file)) return false;
        try
        {
            using var stream = File.OpenRead(file);
            using var document = JsonDocument.Parse(stream);
            return document.RootElement.ValueKind == JsonValueKind.Object
                   && document.RootElement.TryGetProperty("schema", out var schema) && schema.GetString() == PerfRunResult.CurrentSchema;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
