using System.Collections.Concurrent;
using Sd35.CostModeling.Systems;
using Sd35.Mesh;

namespace Sd35.CostModeling;

/// <summary>
/// The library entry point: predicted seconds per image for a config on a system, from a (cached) full-size dry
/// run of the real code and the factors calibrated on the one reference measurement (<see cref="Calibration"/>).
/// </summary>
public static class CostModel
{
    static readonly ConcurrentDictionary<(ParallelConfig, Workload), Lazy<DryRunResult>> CachedRuns = new();
    static readonly Lazy<Calibration> FittedCalibration = new(() => Calibration.Fit(Run));

    /// <summary>The dry run of <paramref name="config"/> on the meta device, made once per process.</summary>
    public static DryRunResult Run(ParallelConfig config, Workload workload) =>
        CachedRuns.GetOrAdd((config, workload), key => new Lazy<DryRunResult>(() => DryRun.Run(key.Item1, key.Item2))).Value;

    /// <summary>The factors fitted on the reference measurement (computed on first use: one dry run of t3k_cfg2_sp2_tp2).</summary>
    public static Calibration Calibration => FittedCalibration.Value;

    /// <summary>
    /// Seconds per image for <paramref name="configId"/> (a registered id or <see cref="ConfigSpec"/>'s full form) on a
    /// built-in system (<see cref="SystemSpec.Names"/>) or a system JSON file. The workload defaults to SD3.5 Large at
    /// 1024² with CFG and T5 in bf16; pass <see cref="Workload.WithoutT5"/> to model the reference's T5-off runs.
    /// </summary>
    public static ImagePrediction Predict(string configId, string system, int steps = 20, Workload? workload = null, WhatIf? whatIf = null) =>
        Predict(ConfigSpec.Parse(configId), SystemSpec.Get(system), steps, workload, whatIf);

    /// <summary>A mesh config runs on a system of the same shape; on a switched node any layout of its devices does.</summary>
    public static bool Fits(ParallelConfig config, SystemSpec system) =>
        system.Switched ? config.Mesh.Size == system.Devices : config.Mesh == new MeshShape(system.MeshRows, system.MeshCols);

    public static ImagePrediction Predict(ParallelConfig config, SystemSpec system, int steps = 20, Workload? workload = null, WhatIf? whatIf = null, ModelFactors? factors = null)
    {
        if (!Fits(config, system))
            throw new ArgumentException($"config {config.Id ?? ConfigSpec.Format(config)} is for a {config.Mesh} mesh; system {system.Name} is {system.MeshRows}x{system.MeshCols}" +
                                        (system.Switched ? $" ({system.Devices} switched devices)" : ""));
        var run = Run(config, workload ?? Workload.Sd35Large);
        return ImagePrediction.From(run, system, factors ?? Calibration.Factors, steps, whatIf);
    }
}
