using Sd35.Profiling;
using System.Text.Json;

namespace Sd35.Perf.Harness;

/// <summary>
/// The perf targets of fixtures/perf/targets.json, keyed by config id, system and model scale. Two kinds:
/// <c>measured_here</c> targets are in GEMM-GFLOP (seconds × the same-process GEMM rate) or, for the overhead-bound
/// sections, in dispatch-kop (seconds × the same-process dispatch rate / 1000), and are checked against the median of
/// the timed runs; <c>modeled</c> targets are the reference system's seconds, checked against the
/// cost model's prediction.
/// </summary>
public sealed record PerfTargetSet(
    string ConfigId, string System, string ModelScale, string Kind, string Unit, int Steps, int Width, int Height,
    IReadOnlyDictionary<string, TargetEntry> Sections, string Provenance)
{
    public SectionTarget? For(string section) =>
        Sections.TryGetValue(section, out var entry) ? new SectionTarget(entry.Value, entry.Tolerance, entry.Unit ?? Unit) : null;
}

/// <summary>
/// One section's target: <paramref name="Unit"/> overrides the set's unit for this section; <paramref name="Measured"/>
/// is the median the target was calibrated from (kept so a test can show that a 2× slower run fails the limit).
/// </summary>
public sealed record TargetEntry(double Value, double Tolerance, string? Unit = null, double? Measured = null);

public static class PerfTargets
{
    public const string MeasuredHere = "measured_here";
    public const string Modeled = "modeled";
    public const string GemmGflopUnit = "gemm_gflop";
    /// <summary>Seconds × the same-process dispatch rate (<see cref="DispatchBaseline"/>) / 1000, for the overhead-bound sections.</summary>
    public const string DispatchKopUnit = "dispatch_kop";
    public const string SecondsUnit = "seconds";

    /// <summary>How tables and charts name a unit: GEMM-GFLOP, dispatch-kop or s.</summary>
    public static string Label(string unit) => unit switch
    {
        GemmGflopUnit => "GEMM-GFLOP",
        DispatchKopUnit => "dispatch-kop",
        _ => "s",
    };

    public static string DefaultPath => RepoPaths.Fixtures("perf", "targets.json");

    public static IReadOnlyList<PerfTargetSet> Load(string? path = null)
    {
        path ??= DefaultPath;
        if (!File.Exists(path)) throw new FileNotFoundException($"perf targets file '{path}' does not exist", path);
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            var sets = document.RootElement.GetProperty("targets").Deserialize<PerfTargetSet[]>(PerfRunResult.Json)
                ?? throw new InvalidDataException($"'{path}': 'targets' is null");
            foreach (var set in sets) Check(set, path);
            return sets;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new InvalidDataException($"'{path}': {e.Message}", e);
        }
    }

    /// <summary>The one target set for this key; a missing or duplicated key is an error naming the key and the file.</summary>
    public static PerfTargetSet Get(string configId, string system, string modelScale, string? path = null)
    {
        var matches = Load(path).Where(s => s.ConfigId == configId && s.System == system && s.ModelScale == modelScale).ToArray();
        return matches.Length switch
        {
            1 => matches[0],
            0 => throw new KeyNotFoundException($"'{path ?? DefaultPath}' has no perf targets for config '{configId}', system '{system}', model scale '{modelScale}'"),
            _ => throw new InvalidDataException($"'{path ?? DefaultPath}' has {matches.Length} target sets for config '{configId}', system '{system}', model scale '{modelScale}'"),
        };
    }

    static void Check(PerfTargetSet set, string path)
    {
        string key = $"{set.ConfigId}/{set.System}/{set.ModelScale}";
        if (set.Kind is not (MeasuredHere or Modeled)) throw new InvalidDataException($"'{path}': {key} has kind '{set.Kind}', expected {MeasuredHere} or {Modeled}");
        CheckUnit(set.Unit, path, key);
        foreach (var (section, entry) in set.Sections)
        {
            if (entry.Unit is not null) CheckUnit(entry.Unit, path, $"{key} section {section}");
            if (!PerfSections.Targeted.Contains(section)) throw new InvalidDataException($"'{path}': {key} names unknown section '{section}'; known: {string.Join(", ", PerfSections.Targeted)}");
            if (!(entry.Value > 0) || !(entry.Tolerance >= 0)) throw new InvalidDataException($"'{path}': {key} section {section} needs value > 0 and tolerance ≥ 0; got {entry.Value}, {entry.Tolerance}");
        }
    }

    static void CheckUnit(string unit, string path, string where)
    {
        if (unit is not (GemmGflopUnit or DispatchKopUnit or SecondsUnit))
            throw new InvalidDataException($"'{path}': {where} has unit '{unit}', expected {GemmGflopUnit}, {DispatchKopUnit} or {SecondsUnit}");
    }
}
