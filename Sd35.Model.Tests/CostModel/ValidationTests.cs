using Sd35.Profiling;
using FluentAssertions;
using Sd35.CostModeling;
using Sd35.Mesh;
using Xunit.Abstractions;
using Model = Sd35.CostModeling.CostModel;

namespace Sd35.Tests.CostModel;

/// <summary>
/// The cost model's validation table, computed and printed. Asserted is only what is honest to assert: the
/// calibration point reproduces, the fitted factors are physical, and every prediction is a finite positive time.
/// The errors against the other measurements are printed, not asserted (README: "Mesh cost model").
/// </summary>
public sealed class ValidationTests(ITestOutputHelper output)
{
    [Fact]
    [Trait("Category", "Slow")]
    public void Validation_table()
    {
        var calibration = Model.Calibration;
        output.WriteLine(calibration.ToString());
        calibration.PredictedStepSeconds.Should().BeApproximately(Calibration.MeasuredStep, 1e-4);
        calibration.Factors.ComputeEfficiency.Should().BeInRange(0.05, 1.0, "a fraction of the matrix engine's peak");
        calibration.Factors.OpOverheadUs.Should().Be(Calibration.TenstorrentOpOverheadPriorUs);

        var rows = Validation.Compute(calibration, Model.Run);
        output.WriteLine(Validation.Table(rows));
        rows.Should().OnlyContain(r => double.IsFinite(r.Predicted) && r.Predicted > 0);
        rows.Single(r => r.Case.IsCalibration).Error!.Value.Should().BeApproximately(0, 1e-3);

        var alternative = Calibration.FitOverhead(Model.Run);
        output.WriteLine($"alternative: {alternative}");
        alternative.Factors.OpOverheadUs.Should().BeInRange(0, 1000, "µs per op");
        output.WriteLine(Validation.Table(Validation.Compute(alternative, Model.Run)));
    }

    [Fact]
    public void Calibration_reproduces_the_measured_step_and_its_factor_is_physical()
    {
        var calibration = Model.Calibration;
        output.WriteLine(calibration.ToString());
        calibration.PredictedStepSeconds.Should().BeApproximately(Calibration.MeasuredStep, 1e-4);
        calibration.Factors.ComputeEfficiency.Should().BeInRange(0.05, 1.0);
        output.WriteLine(Model.Predict(ParallelConfig.Parse(Calibration.ConfigId), Sd35.CostModeling.Systems.SystemSpec.Get("t3k"), 20,
            Calibration.MeasuredWorkload, factors: calibration.Factors).Table());
    }

    [Fact]
    public void A_change_to_the_plan_moves_the_prediction()
    {
        // The same 8 devices with all parallelism on tp: more, larger tp collectives over the slow links.
        var factors = Model.Calibration.Factors;
        var system = Sd35.CostModeling.Systems.SystemSpec.Get("t3k");
        var sp2tp2 = Model.Predict(ParallelConfig.Parse("t3k_cfg2_sp2_tp2"), system, 20, factors: factors);
        var sp1tp4 = Model.Predict(ParallelConfig.Parse("t3k_cfg2_sp1_tp4"), system, 20, factors: factors);
        output.WriteLine($"step: cfg2 sp2 tp2 {sp2tp2.StepSeconds:F4} s, cfg2 sp1 tp4 {sp1tp4.StepSeconds:F4} s");
        sp1tp4.StepSeconds.Should().NotBe(sp2tp2.StepSeconds);
        sp1tp4.Detail[PerfSections.Step].CollectiveSeconds.Should().BeGreaterThan(sp2tp2.Detail[PerfSections.Step].CollectiveSeconds);
    }
}
