using System.Diagnostics;
using Sd35.CostModeling;
using Sd35.Mesh;
using Xunit.Abstractions;

namespace Sd35.Tests.CostModel;

public sealed class DryRunSmokeTests(ITestOutputHelper output)
{
    [Fact]
    public void Validation_smoke()
    {
        var watch = Stopwatch.StartNew();
        var cal = Calibration.Fit(CostModeling.CostModel.Run);
        output.WriteLine(cal.ToString());
        output.WriteLine(Validation.Table(Validation.Compute(cal, CostModeling.CostModel.Run)));
        var alt = Calibration.FitOverhead(CostModeling.CostModel.Run);
        output.WriteLine(alt.ToString());
        output.WriteLine(Validation.Table(Validation.Compute(alt, CostModeling.CostModel.Run)));
        var p = CostModeling.CostModel.Predict(ParallelConfig.Parse("t3k_cfg2_sp2_tp2"), Sd35.CostModeling.Systems.SystemSpec.Get("t3k"), 20, Calibration.MeasuredWorkload, factors: cal.Factors);
        output.WriteLine(p.Table());
        output.WriteLine(p.CollectivesTable());
        var g = CostModeling.CostModel.Predict(ParallelConfig.Parse("tg_cfg2_sp4_tp4"), Sd35.CostModeling.Systems.SystemSpec.Get("galaxy"), 20, factors: cal.Factors);
        output.WriteLine(g.Table());
        output.WriteLine(g.CollectivesTable());
        output.WriteLine($"{watch.Elapsed.TotalSeconds:F1} s");
    }
}
