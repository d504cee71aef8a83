using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sd35.Perf.Harness;

/// <summary>
/// One perf run, every sample kept, in the shape of the reference system's benchmark data
/// (tt-metal <c>BenchmarkData.save_partial_run_json</c>: run type, <c>ml_model_name</c>, <c>config_params</c>,
/// a flat list of measurements with their targets), plus per-section statistics, the target check and the machine
/// the numbers came from. One JSON file per run; the report command reads a folder of them.
/// </summary>
public sealed record PerfRunResult
{
    public const string CurrentSchema = "sd35-perf-run/1";

    public string Schema { get; init; } = CurrentSchema;
    public required DateTimeOffset RunStartTs { get; init; }
    public required DateTimeOffset RunEndTs { get; init; }
    /// <summary><c>measured</c> (timed here) or <c>modeled</c> (predicted by the cost model), with <c>_traced</c> when the trace ran.</summary>
    public required string RunType { get; init; }
    /// <summary><c>sd35_&lt;config id&gt;</c>, as the reference names its runs (e.g. <c>sd35_t3k_cfg2_sp2_tp2</c>).</summary>
    public required string MlModelName { get; init; }
    public required string ConfigId { get; init; }
    public required string System { get; init; }
    public required string ModelScale { get; init; }
    public int BatchSize { get; init; } = 1;
    public string Precision { get; init; } = "fp32";
    public required PerfConfigParams ConfigParams { get; init; }
    public required MachineFacts Machine { get; init; }
    /// <summary>The reference's flat list: one entry per (iteration, section) with seconds, and the target where one applies.</summary>
    public required IReadOnlyList<PerfMeasurement> Measurements { get; init; }
    public required IReadOnlyList<SectionResult> Sections { get; init; }
    public required PerfSummary Summary { get; init; }
    /// <summary>
    /// True when at least one section was checked and every checked section met its target. A run that checked
    /// nothing (measured without targets, as in calibration) is not a pass.
    /// </summary>
    public bool Pass => Sections.Any(s => s.Pass == true) && Sections.All(s => s.Pass != false);

    public SectionResult? Section(string name) => Sections.FirstOrDefault(s => s.Name == name);

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static PerfRunResult Load(string path)
    {
        try
        {
            var result = JsonSerializer.Deserialize<PerfRunResult>(File.ReadAllText(path), Json)
                ?? throw new InvalidDataException($"'{path}' is empty");
            if (result.Schema != CurrentSchema) throw new InvalidDataException($"'{path}' has schema '{result.Schema}', expected '{CurrentSchema}'");
            return result;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a perf run result: {e.Message}", e);
        }
    }

    /// <summary>Writes <c>&lt;folder&gt;/&lt;model name&gt;_&lt;run type&gt;_&lt;UTC time&gt;.json</c> and returns its path.</summary>
    public string Save(string folder)
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, $"{MlModelName}_{RunType}_{RunStartTs.UtcDateTime:yyyyMMdd'T'HHmmss'Z'}.json");
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, ToJson());
        File.Move(temporary, path, overwrite: true);
        return path;
    }
}

/// <summary>The reference's <c>config_params</c>, plus what this harness adds (guidance, seed, runs, trace).</summary>
public sealed record PerfConfigParams(
    int Width, int Height, int NumSteps, int CfgFactor, int SpFactor, int TpFactor, string Topology,
    double GuidanceScale, long Seed, int WarmupRuns, int TimedRuns, bool Traced);

/// <summary>One sample of one section, as the reference's <c>BenchmarkMeasurement</c>.</summary>
public sealed record PerfMeasurement(int Iteration, string StepName, string Name, double Value, double? Target = null);

/// <summary>
/// One section over the timed runs: its seconds, the same-process GEMM rate measured just before each run, and the
/// machine-independent figure (seconds × GEMM GFLOP/s = the GFLOP the baseline GEMM would have done meanwhile).
/// </summary>
public sealed record SectionResult
{
    public required string Name { get; init; }
    public required IReadOnlyList<double> Seconds { get; init; }
    /// <summary>Seconds × the run's GEMM rate: "GEMM-GFLOP", comparable between machines and loads. Empty for modeled runs.</summary>
    public IReadOnlyList<double> GemmGflop { get; init; } = [];
    /// <summary>Seconds × the run's dispatch rate / 1000: "dispatch-kop", the unit of the overhead-bound sections. Empty for modeled runs.</summary>
    public IReadOnlyList<double> DispatchKop { get; init; } = [];
    public required SampleStatistics Stats { get; init; }
    public SectionTarget? Target { get; init; }
    /// <summary>The value checked against the target: the median of the samples in the target's unit.</summary>
    public double? Checked { get; init; }
    /// <summary>null when no target applies, or the section does not apply (<see cref="NotApplicable"/>).</summary>
    public bool? Pass { get; init; }
    /// <summary>Why the section is not checked although it has a target: it is zero by construction in this run (e.g. T5 off).</summary>
    public string? NotApplicable { get; init; }

    /// <summary>
    /// The samples to compare runs by, and their unit: the target's unit when the run has samples in it, else
    /// GEMM-GFLOP when the run had a GEMM probe, else seconds.
    /// </summary>
    public (string Unit, IReadOnlyList<double> Samples) Normalized =>
        Target is { } target && SamplesIn(target.Unit) is { Count: > 0 } inTarget ? (target.Unit, inTarget)
        : SamplesIn(PerfTargets.GemmGflopUnit) is { Count: > 0 } gemm ? (PerfTargets.GemmGflopUnit, gemm)
        : (PerfTargets.SecondsUnit, Seconds);

    /// <summary>The samples in <paramref name="unit"/>, one per timed run; empty when the run had no probe of that unit.</summary>
    public IReadOnlyList<double> SamplesIn(string unit) => SamplesIn(unit, Seconds, GemmGflop, DispatchKop);

    /// <summary>The one choice of samples by unit, for a section being built (<see cref="PerfSession"/>) and a stored one.</summary>
    public static IReadOnlyList<double> SamplesIn(string unit, IReadOnlyList<double> seconds, IReadOnlyList<double> gemmGflop, IReadOnlyList<double> dispatchKop)
    {
        var samples = unit switch
        {
            PerfTargets.GemmGflopUnit => gemmGflop,
            PerfTargets.DispatchKopUnit => dispatchKop,
            _ => seconds,
        };
        return samples.Count == seconds.Count ? samples : [];
    }
}

/// <summary>A section's target as read from fixtures/perf/targets.json; <paramref name="Lower"/> is a modeled band's lower edge.</summary>
public sealed record SectionTarget(double Value, double Tolerance, string Unit, double? Lower = null)
{
    /// <summary>The largest passing value: target × (1 + tolerance), as the reference's 5 % margin.</summary>
    public double Limit => Value * (1 + Tolerance);

    /// <summary>Within the limit and, for a band, not below its lower edge.</summary>
    public bool Admits(double value) => value <= Limit && (Lower is not { } lower || value >= lower);

    /// <summary>The passing range as text: "≤ limit" or "[lower, upper]".</summary>
    public string Range(IFormatProvider? format = null) => Lower is { } lower
        ? string.Format(format, "[{0:G4}, {1:G4}]", lower, Limit)
        : string.Format(format, "≤ {0:G4}", Limit);
}

public sealed record PerfSummary(double StepsPerSecond, double ImagesPerSecond, double LoadSeconds, IReadOnlyDictionary<string, double> BreakdownPercent);
