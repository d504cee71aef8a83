using Sd35.Profiling;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sd35.Diagnostics;
using Sd35.Pipeline;

namespace Sd35.Tools.Diagnostics;

/// <summary>One pipeline stage as measured from outside: wall time, how much of it was loading, peak and released memory.</summary>
public sealed record StageMemory(GenerationStage Stage, double WallSeconds, double ComputeSeconds, long PeakResidentBytes, long ResidentAfterReleaseBytes)
{
    /// <summary>Wall time not spent computing: building the models and reading their weights.</summary>
    public double LoadSeconds => Math.Max(0, WallSeconds - ComputeSeconds);
}

/// <summary>
/// Watches a generation's stages (an observer given to <c>Generate</c>): at each stage's end, once its models are
/// released, it reads the process's peak resident memory since the previous stage ended (<c>VmHWM</c>, then reset)
/// and the resident memory left. With the run's <see cref="StageTimings"/> it splits each stage's wall time into
/// loading and computing. Linux only (elsewhere memory reads as 0).
/// </summary>
public sealed class StageMemoryProbe : IGenerationObserver
{
    readonly Stopwatch _clock = new();
    readonly List<(GenerationStage Stage, double Wall, long Peak, long After)> _marks = [];
    long _overallPeak;

    public long ResidentAtStartBytes { get; private set; }

    /// <summary>Call right before <c>Generate</c>.</summary>
    public void Start()
    {
        ResidentAtStartBytes = ProcessMemory.ResidentBytes;
        _overallPeak = ProcessMemory.PeakResidentBytes;
        ProcessMemory.ResetPeak();
        _clock.Restart();
    }

    public void StageEnded(GenerationStage stage)
    {
        long peak = ProcessMemory.PeakResidentBytes;
        _overallPeak = Math.Max(_overallPeak, peak);
        _marks.Add((stage, _clock.Elapsed.TotalSeconds, peak, ProcessMemory.ResidentBytes));
        ProcessMemory.ResetPeak();
        _clock.Restart();
    }

    /// <summary>The highest resident memory of the whole process so far, including before <see cref="Start"/>.</summary>
    public long OverallPeakBytes => Math.Max(_overallPeak, ProcessMemory.PeakResidentBytes);

    public IReadOnlyList<StageMemory> Stages(StageTimings timings) =>
        _marks.Select(m => new StageMemory(m.Stage, m.Wall, timings.Seconds(m.Stage), m.Peak, m.After)).ToList();

    public string ToTable(StageTimings timings)
    {
        var lines = new List<string> { $"{"stage",-14} {"load s",8} {"compute s",10} {"peak RSS GiB",13} {"RSS after release GiB",22}" };
        foreach (var s in Stages(timings))
            lines.Add($"{s.Stage.Label(),-14} {s.LoadSeconds,8:F1} {s.ComputeSeconds,10:F1} {Gib(s.PeakResidentBytes),13:F2} {Gib(s.ResidentAfterReleaseBytes),22:F2}");
        lines.Add($"whole process peak RSS (VmHWM) {Gib(OverallPeakBytes):F2} GiB");
        return string.Join(Environment.NewLine, lines);
    }

    /// <summary>
    /// The measurements as JSON, with sections named as in the perf harness: each stage's
    /// (<see cref="GenerationStages.Section"/>: <c>total_encoding</c>, <c>image_encoding</c>, <c>denoising</c>, <c>vae</c>),
    /// <c>denoising_step_{j}</c> and <c>total</c>.
    /// </summary>
    public JsonObject ToJson(StageTimings timings)
    {
        var sections = new JsonObject();
        foreach (var s in Stages(timings))
        {
            sections[s.Stage.Section()] = new JsonObject
            {
                ["load_seconds"] = s.LoadSeconds,
                ["compute_seconds"] = s.ComputeSeconds,
                ["wall_seconds"] = s.WallSeconds,
                ["peak_rss_bytes"] = s.PeakResidentBytes,
                ["rss_after_release_bytes"] = s.ResidentAfterReleaseBytes,
            };
        }
        for (int j = 0; j < timings.StepSeconds.Count; j++) sections[PerfSections.DenoisingStep(j)] = new JsonObject { ["compute_seconds"] = timings.StepSeconds[j] };
        sections[PerfSections.Total] = new JsonObject
        {
            ["wall_seconds"] = _marks.Sum(m => m.Wall),
            ["peak_rss_bytes"] = OverallPeakBytes,
            ["rss_at_start_bytes"] = ResidentAtStartBytes,
        };
        return new JsonObject { ["sections"] = sections };
    }

    public void WriteJson(string path, StageTimings timings) =>
        File.WriteAllText(path, ToJson(timings).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    static double Gib(long bytes) => bytes / (double)(1L << 30);
}
