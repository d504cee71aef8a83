using Sd35.Profiling;
using Sd35.Perf.Harness;
using Xunit.Abstractions;

namespace Sd35.Perf.Tests;

/// <summary>
/// The perf tests' two checks. <see cref="Measured"/> runs the config's real sharded pipeline at CI scale (one warm-up,
/// three timed runs), writes the run's JSON under TestResults/perf/ and checks each targeted section's median in
/// GEMM-GFLOP against fixtures/perf/targets.json. <see cref="Modeled"/> checks the cost model's prediction for a
/// reference system against the reference's own targets.
/// </summary>
public static class PerfCheck
{
    /// <summary>The system key of the measured-here targets: a simulated mesh on this CPU, in machine-independent units.</summary>
    public const string CpuSimulated = "cpu_sim";

    public static PerfRunResult Measured(string configId, ITestOutputHelper output, int timedRuns = 3)
    {
        // SD35_PERF_CALIBRATE=1 measures without targets (to set new ones from the JSON; see Sd35.Perf/README.md). Such a
        // run checks nothing, so it ends failed: a calibration can never be read as a pass.
        bool calibrating = Environment.GetEnvironmentVariable("SD35_PERF_CALIBRATE") == "1";
        var targets = calibrating ? null : PerfTargets.Get(configId, CpuSimulated, CiScaleModel.Scale);
        var run = PerfSession.Measure(new PerfSessionOptions
        {
            ConfigId = configId, Components = CiScaleModel.Components(), Request = CiScaleModel.Request,
            System = CpuSimulated, ModelScale = CiScaleModel.Scale, TimedRuns = timedRuns, Targets = targets,
        });
        var path = run.Save(RepoPaths.PerfResults);
        output.WriteLine(PerfTable.Markdown(run));
        output.WriteLine($"results: {path}");
        Assert.False(calibrating, $"SD35_PERF_CALIBRATE=1: {configId} was measured without targets, so nothing was checked and this is not a pass. " +
            $"Results in {path}: add each section's median to its 'samples' in fixtures/perf/targets.json (Sd35.Perf/README.md).");
        AssertChecked(run, $"Perf check failed for {configId}", path);
        return run;
    }

    public static void Modeled(string configId, string system, ITestOutputHelper output)
    {
        var targets = PerfTargets.Get(configId, system, "large");
        var predicted = ModeledPerf.Predict(configId, system, targets);
        var run = ModeledPerf.ToResult(configId, system, targets, predicted);
        var path = run.Save(RepoPaths.PerfResults);
        output.WriteLine(PerfTable.Markdown(run));
        AssertChecked(run, $"Modeled perf check failed for {configId} on {system}", path);
    }

    /// <summary>
    /// Every targeted section was checked (or is not applicable, with the reason) and met its target. A targeted section
    /// the run left unchecked fails naming it.
    /// </summary>
    public static void AssertChecked(PerfRunResult run, string failure, string path)
    {
        var unchecked_ = PerfSections.Targeted.Where(name => run.Section(name) is not { } s || (s.Pass is null && s.NotApplicable is null)).ToArray();
        Assert.True(unchecked_.Length == 0, $"{failure}: no target was checked for {string.Join(", ", unchecked_)}. Results in {path}.");
        var failed = run.Sections.Where(s => s.Pass == false).ToArray();
        Assert.True(failed.Length == 0, $"{failure}: " + string.Join("; ", failed.Select(s =>
            $"{s.Name} {s.Checked:G4} {PerfTargets.Label(s.Target!.Unit)} outside {s.Target.Range()} (target {s.Target.Value:G4})")) + $". Results in {path}.");
        Assert.True(run.Pass);
    }
}
