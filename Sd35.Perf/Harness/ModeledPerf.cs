using Sd35.Profiling;
using Sd35.CostModeling;
using Sd35.Mesh;

namespace Sd35.Perf.Harness;

/// <summary>
/// The modeled perf check: the cost model's seconds per section (<see cref="CostModel"/>, a dry run of the real
/// per-device program at full size) for a reference system, compared with the reference's targets.
/// </summary>
public static class ModeledPerf
{
    public static IReadOnlyDictionary<string, double> Predict(string configId, string system, PerfTargetSet targets)
    {
        // The reference's 8-chip numbers were taken with T5 off (a device-memory limit there, reference-system.md §3.4).
        var workload = system == "t3k" ? Workload.Sd35Large.WithoutT5() : Workload.Sd35Large;
        var predicted = CostModel.Predict(configId, system, targets.Steps, workload);
        return PerfSections.Targeted.ToDictionary(s => s, s => predicted[s]);
    }

    /// <summary>A prediction as a one-sample run, so the report command and history treat it as any other run.</summary>
    public static PerfRunResult ToResult(string configId, string system, PerfTargetSet targets, IReadOnlyDictionary<string, double> predicted)
    {
        var config = ParallelConfig.Parse(configId);
        var parameters = new PerfConfigParams(targets.Width, targets.Height, targets.Steps, config.Cfg.Factor, config.Sp.Factor, config.Tp.Factor,
            config.Mesh.ToString(), 3.5, 0, WarmupRuns: 0, TimedRuns: 1, Traced: true);
        var machine = MachineFacts.Now("none (modeled)", [], MachineFacts.LoadAverage(), "n/a");
        return PerfSession.Build(new RunKey(configId, system, targets.ModelScale), targets, DateTimeOffset.UtcNow, parameters, machine, [new Dictionary<string, double>(predicted)], gemmRates: null, runType: "modeled");
    }
}
