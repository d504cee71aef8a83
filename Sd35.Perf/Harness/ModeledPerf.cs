using Sd35.Mesh;

namespace Sd35.Perf.Harness;

/// <summary>
/// The modeled perf check: the cost model's seconds per section for a reference system, compared with the
/// reference's targets. The cost model is issue 11 (branch <c>costmodel</c>); until it is merged,
/// <see cref="Predict"/> fails with a message that says so, so the modeled tests fail rather than pass vacuously.
/// </summary>
public static class ModeledPerf
{
    public static IReadOnlyDictionary<string, double> Predict(string configId, string system, PerfTargetSet targets) =>
        throw new InvalidOperationException(
            $"No cost model to predict {configId} on {system} ({targets.Steps} steps, {targets.Width}×{targets.Height}): " +
            "the mesh cost model (issue 11, branch costmodel) has not been merged, so the modeled targets cannot be checked yet.");

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
