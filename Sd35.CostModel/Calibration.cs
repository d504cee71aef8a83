using Sd35.CostModeling.Systems;
using Sd35.Mesh;

namespace Sd35.CostModeling;

/// <summary>
/// Fits the model on ONE measurement — the reference's t3k_cfg2_sp2_tp2, 0.487 s per denoising step (20 steps, T5
/// off, so 154 prompt tokens; tt-metal PR #26503 as recorded in shared/docs/reference-system.md §3.4) — and nothing
/// else. One equation determines one factor: the compute efficiency is solved for, the per-op overhead is a stated
/// prior (<see cref="TenstorrentOpOverheadPriorUs"/>). <see cref="FitOverhead"/> is the alternative (the overhead
/// solved for, the efficiency from a published out-of-box GEMM rate), kept to show how much the choice matters.
/// </summary>
public sealed record Calibration(ModelFactors Factors, string Fitted, double MeasuredStepSeconds, double PredictedStepSeconds)
{
    public const string ConfigId = "t3k_cfg2_sp2_tp2";
    public const string System = "t3k";
    public const double MeasuredStep = 0.487;
    public const string Source = "reference-system.md §3.4 (tt-metal PR #26503): t3k_cfg2_sp2_tp2, 20 steps, T5 off, 0.487 s/step";

    /// <summary>
    /// [E] Prior for the fixed cost of one traced Tensix op: 10 µs. An assumption, not a measurement: systems.md has no
    /// op-dispatch figure; §4.1's smallest collective (≈5 µs base) bounds the scale from below.
    /// </summary>
    public const double TenstorrentOpOverheadPriorUs = 10;

    /// <summary>
    /// [P/M] Out-of-box GEMM efficiency used when the overhead is the fitted factor instead: ≈69 TF of 131 TF at BF16
    /// HiFi2 with DRAM inputs on N150 (systems.md §1.2) = 0.53.
    /// </summary>
    public const double OutOfBoxGemmEfficiency = 69.0 / 131.0;

    public static Workload MeasuredWorkload => Workload.Sd35Large.WithoutT5();

    public static Calibration Fit(Func<ParallelConfig, Workload, DryRunResult> run)
    {
        var step = StepFunction(run);
        double efficiency = Solve(e => step(new ModelFactors(e, TenstorrentOpOverheadPriorUs)), 0.005, 1.0, decreasing: true);
        var factors = new ModelFactors(efficiency, TenstorrentOpOverheadPriorUs);
        return new Calibration(factors, "compute efficiency", MeasuredStep, step(factors));
    }

    /// <summary>The alternative fit: the per-op overhead solved for, the compute efficiency fixed at <see cref="OutOfBoxGemmEfficiency"/>.</summary>
    public static Calibration FitOverhead(Func<ParallelConfig, Workload, DryRunResult> run)
    {
        var step = StepFunction(run);
        double overhead = Solve(o => step(new ModelFactors(OutOfBoxGemmEfficiency, o)), 0, 2000, decreasing: false);
        var factors = new ModelFactors(OutOfBoxGemmEfficiency, overhead);
        return new Calibration(factors, "op overhead", MeasuredStep, step(factors));
    }

    static Func<ModelFactors, double> StepFunction(Func<ParallelConfig, Workload, DryRunResult> run)
    {
        var dry = run(ParallelConfig.Parse(ConfigId), MeasuredWorkload);
        var system = SystemSpec.Get(System);
        return f => ImagePrediction.From(dry, system, f, 20).StepSeconds;
    }

    /// <summary>Bisection for the parameter at which the predicted step equals the measurement.</summary>
    static double Solve(Func<double, double> predicted, double low, double high, bool decreasing)
    {
        double fLow = predicted(low) - MeasuredStep, fHigh = predicted(high) - MeasuredStep;
        if (Math.Sign(fLow) == Math.Sign(fHigh))
            throw new InvalidOperationException($"the measurement {MeasuredStep} s is outside the model's range [{predicted(decreasing ? high : low):F3}, {predicted(decreasing ? low : high):F3}] s for this factor");
        for (int i = 0; i < 100; i++)
        {
            double mid = (low + high) / 2, f = predicted(mid) - MeasuredStep;
            if (Math.Sign(f) == Math.Sign(fLow)) (low, fLow) = (mid, f);
            else high = mid;
        }
        return (low + high) / 2;
    }

    public override string ToString() =>
        $"fitted {Fitted} on {ConfigId}/{System} ({MeasuredStepSeconds} s/step): {Factors}; reproduces {PredictedStepSeconds:F4} s";
}
