using Sd35.Profiling;
using FluentAssertions;
using Sd35.Perf.Harness;

namespace Sd35.Perf.Tests;

/// <summary>
/// The measured targets are not vacuous: fed synthetic samples at the medians they were calibrated from, every config
/// passes; with every denoising step twice as slow (the regression the reference once had), denoising and total fail.
/// No timing here: the samples are made up, the check is <see cref="PerfSession.Build"/>'s, as in the perf tests.
/// </summary>
public class PerfTargetTests
{
    const double GemmRate = 100;          // GFLOP/s: any rate does, the samples are made in the target's unit
    const double DispatchRate = 50_000;   // hand-offs/s

    public static TheoryData<string> MeasuredConfigs() =>
        [.. PerfTargets.Load().Where(s => s.Kind == PerfTargets.MeasuredHere).Select(s => s.ConfigId)];

    [Theory, MemberData(nameof(MeasuredConfigs))]
    public void Calibrated_medians_pass_and_a_2x_slower_denoising_fails(string configId)
    {
        var targets = PerfTargets.Get(configId, PerfCheck.CpuSimulated, CiScaleModel.Scale);

        var atCalibration = Check(targets, slowdown: 1);
        atCalibration.Sections.Where(s => s.Pass == false).Select(s => s.Name).Should().BeEmpty();
        atCalibration.Sections.Count(s => s.Pass == true).Should().Be(PerfSections.Targeted.Length, "every targeted section is checked");

        var twiceAsSlow = Check(targets, slowdown: 2);
        twiceAsSlow.Sections.Where(s => s.Pass == false).Select(s => s.Name).Should().BeEquivalentTo([PerfSections.Denoising, PerfSections.Total]);
        twiceAsSlow.Pass.Should().BeFalse();
    }

    [Fact]
    public void A_sections_own_unit_overrides_the_sets_and_is_checked_in_it()
    {
        var targets = PerfTargets.Get("n150_cfg1_sp1_tp1", PerfCheck.CpuSimulated, CiScaleModel.Scale);
        targets.For(PerfSections.T5Encoding)!.Unit.Should().Be(PerfTargets.DispatchKopUnit);
        targets.For(PerfSections.Denoising)!.Unit.Should().Be(PerfTargets.GemmGflopUnit);

        var run = Check(targets, slowdown: 1);
        var t5 = run.Section(PerfSections.T5Encoding)!;
        t5.Checked.Should().BeApproximately(targets.Sections[PerfSections.T5Encoding].Measured!.Value, 1e-9);
        t5.DispatchKop.Should().HaveCount(3);
    }

    /// <summary>Three runs whose every targeted section measures its calibration median (× <paramref name="slowdown"/> for the steps).</summary>
    static PerfRunResult Check(PerfTargetSet targets, double slowdown)
    {
        double Seconds(string section)
        {
            var entry = targets.Sections[section];
            var measured = entry.Measured ?? throw new InvalidOperationException($"{targets.ConfigId} {section}: no calibration median ('measured') in targets.json");
            return (entry.Unit ?? targets.Unit) == PerfTargets.DispatchKopUnit ? measured * 1000 / DispatchRate : measured / GemmRate;
        }
        var run = new Dictionary<string, double>
        {
            [PerfSections.ClipEncoding] = Seconds(PerfSections.ClipEncoding),
            [PerfSections.T5Encoding] = Seconds(PerfSections.T5Encoding),
            [PerfSections.TotalEncoding] = Seconds(PerfSections.TotalEncoding),
            [PerfSections.Vae] = Seconds(PerfSections.Vae),
            [PerfSections.Load] = 1,
        };
        double step = Seconds(PerfSections.Denoising) / targets.Steps;
        for (int j = 0; j < targets.Steps; j++) run[PerfSections.DenoisingStep(j)] = step * slowdown;
        run[PerfSections.Denoising] = step * targets.Steps * slowdown;
        run[PerfSections.Total] = Seconds(PerfSections.Total) + run[PerfSections.Denoising] - Seconds(PerfSections.Denoising);
        var runs = Enumerable.Repeat(run, 3).ToArray();
        var machine = new MachineFacts
        {
            Cpu = "synthetic", LogicalCores = 2, TorchThreads = 2, Os = "", Runtime = "", GemmShape = GemmBaseline.Shape, GemmGflops = [GemmRate, GemmRate, GemmRate],
            LoadBefore = "", LoadAfter = "", GitCommit = "", DispatchShape = DispatchBaseline.Shape, DispatchRates = [DispatchRate, DispatchRate, DispatchRate],
        };
        var parameters = new PerfConfigParams(targets.Width, targets.Height, targets.Steps, 1, 1, 1, "synthetic", 3.5, 0, 1, 3, false);
        return PerfSession.Build(new RunKey(targets.ConfigId, targets.System, targets.ModelScale), targets, DateTimeOffset.UtcNow, parameters, machine,
            runs, [GemmRate, GemmRate, GemmRate], "measured", [DispatchRate, DispatchRate, DispatchRate]);
    }
}
