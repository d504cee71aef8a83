using Sd35.Profiling;
using Sd35.CostModeling;
using Sd35.Mesh;

namespace Sd35.Perf.Harness;

/// <summary>
/// The modeled perf check: the cost model's seconds per section (<see cref="CostModel"/>, a dry run of the real
/// per-device program at full size) for a reference system, compared with the band around the reference's figures
/// that fixtures/perf/targets.json states. A section the modeled workload leaves out is not applicable, not a pass.
/// </summary>
public static class ModeledPerf
{
    public static IReadOnlyDictionary<string, double> Predict(string configId, string system, PerfTargetSet targets)
    {
        var predicted = CostModel.Predict(configId, system, targets.Steps, WorkloadOn(system));
        return PerfSections.Targeted.ToDictionary(s => s, s => predicted[s]);
    }

    /// <summary>The reference's 8-chip numbers were taken with T5 off (a device-memory limit there, reference-system.md §3.4).</summary>
    static Workload WorkloadOn(string system) => system == "t3k" ? Workload.Sd35Large.WithoutT5() : Workload.Sd35Large;

    /// <summary>The sections the modeled workload leaves out on <paramref name="system"/>, with why: they are 0 s by construction.</summary>
    public static IReadOnlyDictionary<string, string> NotApplicable(string system) => WorkloadOn(system).T5 is null
        ? new Dictionary<string, string> { [PerfSections.T5Encoding] = "T5 off as in the reference's runs on this system: 0 s by construction" }
        : new Dictionary<string, string>();

    /// <summary>A prediction as a one-sample run, so the report command and history treat it as any other run.</summary>
    public static PerfRunResult ToResult(string configId, string system, PerfTargetSet targets, IReadOnlyDictionary<string, double> predicted)
    {
        var config = ParallelConfig.Parse(configId);
        var parameters = new PerfConfigParams(targets.Width, targets.Height, targets.Steps, config.Cfg.Factor, config.Sp.Factor, config.Tp.Factor,
            config.Mesh.ToString(), 3.5, 0, WarmupRuns: 0, TimedRuns: 1, Traced: true);
        var machine = MachineFacts.Now("none (modeled)", [], MachineFacts.LoadAverage(), "n/a");
        return PerfSession.Build(new RunKey(configId, system, targets.ModelScale), targets, DateTimeOffset.UtcNow, parameters, machine, [new Dictionary<string, double>(predicted)], gemmRates: null,
            runType: "modeled", notApplicable: NotApplicable(system));
    }
}
