using Sd35.Profiling;
using System.Text.Json;

namespace Sd35.Perf.Harness;

/// <summary>
/// The perf targets of fixtures/perf/targets.json, keyed by config id, system and model scale. Two kinds:
/// <c>measured_here</c> targets are in GEMM-GFLOP (seconds × the same-process GEMM rate) or, for the overhead-bound
/// sections, in dispatch-kop (seconds × the same-process dispatch rate / 1000), and are checked against the median of
/// the timed runs; their value is the largest of the recorded samples they were set from and their limit
/// <see cref="PerfTargets.MeasuredHeadroom"/> above it. <c>modeled</c> targets are the reference system's seconds,
/// checked against the cost model's prediction within a band: both edges stated in the file with their source.
/// Every set names every targeted section.
/// </summary>
public sealed record PerfTargetSet(
    string ConfigId, string System, string ModelScale, string Kind, string Unit, int Steps, int Width, int Height,
    IReadOnlyDictionary<string, TargetEntry> Sections, string Provenance, string? SamplesSource = null)
{
    public SectionTarget? For(string section) =>
        Sections.TryGetValue(section, out var entry) ? new SectionTarget(entry.Value, entry.Tolerance, entry.Unit ?? Unit, entry.Lower) : null;
}

/// <summary>
/// One section's target: <paramref name="Unit"/> overrides the set's unit for this section. measured_here:
/// <paramref name="Samples"/> are the run medians the target was set from (the set's <c>samples_source</c> says which
/// runs), <paramref name="Value"/> their largest. modeled: <paramref name="Value"/> is the reference's figure, the band
/// runs from <paramref name="Lower"/> to <paramref name="Upper"/> (= value × (1 + tolerance)), <paramref name="Source"/>
/// says where each edge comes from.
/// </summary>
public sealed record TargetEntry(double Value, double Tolerance, string? Unit = null, IReadOnlyList<double>? Samples = null,
    double? Lower = null, double? Upper = null, string? Source = null);

public static class PerfTargets
{
    public const string MeasuredHere = "measured_here";
    public const string Modeled = "modeled";
    public const string GemmGflopUnit = "gemm_gflop";
    /// <summary>Seconds × the same-process dispatch rate (<see cref="DispatchBaseline"/>) / 1000, for the overhead-bound sections.</summary>
    public const string DispatchKopUnit = "dispatch_kop";
    public const string SecondsUnit = "seconds";

    /// <summary>
    /// A measured limit's headroom over the largest recorded sample: the samples already hold the run-to-run spread
    /// (up to 3.9× between medians for the overhead-bound sections), and 50 % more keeps a 2× slower GEMM-bound section
    /// (denoising, total: medians within 1.13× of each other) failing.
    /// </summary>
    public const double MeasuredHeadroom = 0.5;

    /// <summary>Fewest samples a measured target may be set from.</summary>
    public const int MinSamples = 3;

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
        foreach (var section in PerfSections.Targeted)
            if (!set.Sections.ContainsKey(section)) throw new InvalidDataException($"'{path}': {key} has no target for section '{section}'");
        foreach (var (section, entry) in set.Sections)
        {
            string where = $"'{path}': {key} section {section}";
            if (entry.Unit is not null) CheckUnit(entry.Unit, path, $"{key} section {section}");
            if (!PerfSections.Targeted.Contains(section)) throw new InvalidDataException($"'{path}': {key} names unknown section '{section}'; known: {string.Join(", ", PerfSections.Targeted)}");
            if (!(entry.Value > 0) || !(entry.Tolerance >= 0)) throw new InvalidDataException($"{where} needs value > 0 and tolerance ≥ 0; got {entry.Value}, {entry.Tolerance}");
            if (set.Kind == MeasuredHere) CheckMeasured(entry, where);
            else CheckBand(entry, where);
        }
    }

    /// <summary>A measured target follows from its samples: value = the largest, tolerance = <see cref="MeasuredHeadroom"/>.</summary>
    static void CheckMeasured(TargetEntry entry, string where)
    {
        if (entry.Samples is not { Count: >= MinSamples } samples || samples.Any(x => !(x > 0)))
            throw new InvalidDataException($"{where} needs 'samples': at least {MinSamples} positive run medians it was set from; got {(entry.Samples is null ? "none" : string.Join(", ", entry.Samples))}");
        if (entry.Value != samples.Max() || entry.Tolerance != MeasuredHeadroom)
            throw new InvalidDataException($"{where}: value {entry.Value} and tolerance {entry.Tolerance} do not follow from its samples ({string.Join(", ", samples)}): " +
                $"expected value {samples.Max()} (the largest) and tolerance {MeasuredHeadroom}");
    }

    /// <summary>A modeled target states both edges and their source: lower &gt; 0 (a prediction of 0 fails) and upper = value × (1 + tolerance).</summary>
    static void CheckBand(TargetEntry entry, string where)
    {
        if (entry.Lower is not { } lower || entry.Upper is not { } upper || string.IsNullOrWhiteSpace(entry.Source))
            throw new InvalidDataException($"{where} needs 'lower', 'upper' and 'source' (the band around the reference's figure and where its edges come from)");
        if (!(lower > 0) || !(lower < entry.Value) || Math.Abs(upper - entry.Value * (1 + entry.Tolerance)) > 1e-9 * upper)
            throw new InvalidDataException($"{where}: band [{lower}, {upper}] must have 0 < lower < value {entry.Value} and upper = value × (1 + tolerance {entry.Tolerance})");
    }

    static void CheckUnit(string unit, string path, string where)
    {
        if (unit is not (GemmGflopUnit or DispatchKopUnit or SecondsUnit))
            throw new InvalidDataException($"'{path}': {where} has unit '{unit}', expected {GemmGflopUnit}, {DispatchKopUnit} or {SecondsUnit}");
    }
}
