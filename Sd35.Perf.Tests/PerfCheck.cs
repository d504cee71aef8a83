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
        // SD35_PERF_CALIBRATE=1 measures without targets (to set new ones from the JSON; see Sd35.Perf/README.md).
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
        var failed = run.Sections.Where(s => s.Pass == false).ToArray();
        Assert.True(failed.Length == 0,
            $"Perf check failed for {configId}: " + string.Join("; ", failed.Select(s =>
                $"{s.Name} median {s.Checked:F3} {s.Target!.Unit} > limit {s.Target.Limit:F3} (target {s.Target.Value:F3} + {s.Target.Tolerance:P0})")) +
            $". Results in {path}.");
        return run;
    }

    public static void Modeled(string configId, string system, ITestOutputHelper output)
    {
        var targets = PerfTargets.Get(configId, system, "large");
        var predicted = ModeledPerf.Predict(configId, system, targets);
        var run = ModeledPerf.ToResult(configId, system, targets, predicted);
        var path = run.Save(RepoPaths.PerfResults);
        output.WriteLine(PerfTable.Markdown(run));
        var failed = run.Sections.Where(s => s.Pass == false).ToArray();
        Assert.True(failed.Length == 0, $"Modeled perf check failed for {configId} on {system}: " +
            string.Join("; ", failed.Select(s => $"{s.Name} predicted {s.Checked:F3} s > limit {s.Target!.Limit:F3} s (target {s.Target.Value} s + {s.Target.Tolerance:P0})")));
    }
}
