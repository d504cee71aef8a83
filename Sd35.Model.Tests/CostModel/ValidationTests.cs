using Sd35.Profiling;
using FluentAssertions;
using Sd35.CostModeling;
using Sd35.Mesh;
using Xunit.Abstractions;
using Model = Sd35.CostModeling.CostModel;

namespace Sd35.Tests.CostModel;

/// <summary>
/// The cost model's validation table, computed, printed and asserted on the figures it was NOT fitted on. The factors
/// are fitted on one figure — the reference's t3k_cfg2_sp2_tp2 step, 0.487 s — which therefore proves nothing and is
/// left out; every other measurement of the reference system must lie in its band (<see cref="Band"/>), so a model that
/// predicts zero, or twice the work, fails (README: "Mesh cost model").
/// </summary>
public sealed class ValidationTests(ITestOutputHelper output)
{
    /// <summary>
    /// The band a prediction of a figure the model was not fitted on must lie in, by what the figure measures:
    /// step and total times (GEMM-bound, what the model models) within ±30 % — the largest error seen is +25 % (the
    /// Blackhole step from systems.md, no primary source), the others 12–16 % —; encoder and VAE times (overhead-bound:
    /// host transfers and dispatch the model leaves out; seen −73 to −85 %) from a tenth of the figure to 1.3× it, as
    /// the modeled perf targets' lower edges; a target that is only an upper bound, at most 1.3× it.
    /// </summary>
    static (double Low, double High) Band(ValidationCase c)
    {
        double m = c.Measured!.Value;
        if (c.UpperBoundOnly) return (0, 1.3 * m);
        return c.Section is ImagePrediction.Step or ImagePrediction.Total ? (0.7 * m, 1.3 * m) : (m / 10, 1.3 * m);
    }

    static void CheckInBand(ValidationRow row)
    {
        var (low, high) = Band(row.Case);
        if (!(row.Predicted > low && row.Predicted <= high))
            throw new Xunit.Sdk.XunitException($"{row.Case.What} ({row.Case.ConfigId} on {row.Case.System}, {row.Case.Section}): predicted {row.Predicted:G4} s, " +
                $"measured {row.Case.Measured:G4} s ({row.Case.Source}); outside ({low:G4}, {high:G4}]");
    }

    [Fact]
    public void Predictions_of_figures_it_was_not_fitted_on_lie_in_their_bands()
    {
        var calibration = Model.Calibration;
        output.WriteLine(calibration.ToString());
        calibration.ToString().Should().StartWith($"fitted compute efficiency on {Calibration.ConfigId}/{Calibration.System} ({Calibration.MeasuredStep} s/step)",
            "the one figure the model is fitted on");
        calibration.Factors.ComputeEfficiency.Should().BeInRange(0.05, 1.0, "a fraction of the matrix engine's peak");
        calibration.Factors.OpOverheadUs.Should().Be(Calibration.TenstorrentOpOverheadPriorUs);

        var rows = Validation.Compute(calibration, Model.Run);
        output.WriteLine(Validation.Table(rows));
        rows.Count(r => r.Case.IsCalibration).Should().Be(1);
        var evidence = rows.Where(r => !r.Case.IsCalibration && r.Case.Measured is not null).ToArray();
        evidence.Select(r => r.Case.What).Should().Contain(["Galaxy step", "8-chip box total, 20 steps", "8-chip box VAE"], "other systems, other sections, the whole image");
        foreach (var row in evidence) CheckInBand(row);
        rows.Where(r => r.Case.Measured is null).Should().OnlyContain(r => double.IsFinite(r.Predicted) && r.Predicted > 0);
    }

    [Fact]
    public void A_prediction_of_zero_or_of_twice_the_measurement_fails_its_band()
    {
        foreach (var c in Validation.Cases.Where(c => !c.IsCalibration && c.Measured is not null))
        {
            FluentActions.Invoking(() => CheckInBand(new ValidationRow(c, 0))).Should().Throw<Xunit.Sdk.XunitException>().WithMessage($"{c.What}*predicted 0 s*");
            FluentActions.Invoking(() => CheckInBand(new ValidationRow(c, 2 * c.Measured!.Value))).Should().Throw<Xunit.Sdk.XunitException>();
        }
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void Validation_table_of_the_alternative_fit()
    {
        // The other choice of the one fitted factor (the op overhead instead of the efficiency), printed to show how much
        // the choice matters (README: "Mesh cost model"); only its factor's plausibility is asserted.
        var alternative = Calibration.FitOverhead(Model.Run);
        output.WriteLine($"alternative: {alternative}");
        alternative.Factors.OpOverheadUs.Should().BeInRange(0, 1000, "µs per op");
        output.WriteLine(Validation.Table(Validation.Compute(alternative, Model.Run)));
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
