using Sd35.Profiling;
using FluentAssertions;
using Sd35.Perf.Harness;
using Xunit.Abstractions;

namespace Sd35.Perf.Tests;

/// <summary>
/// The measured targets are not vacuous: fed synthetic samples at the median of the run medians they were set from,
/// every config passes, and so does every recorded run; with every denoising step twice as slow (the regression the
/// reference once had), denoising and total fail. No timing here: the samples are made up, the check is
/// <see cref="PerfSession.Build"/>'s, as in the perf tests.
/// </summary>
public class PerfTargetTests(ITestOutputHelper output)
{
    const double GemmRate = 100;          // GFLOP/s: any rate does, the samples are made in the target's unit
    const double DispatchRate = 50_000;   // hand-offs/s

    public static TheoryData<string> MeasuredConfigs() =>
        [.. PerfTargets.Load().Where(s => s.Kind == PerfTargets.MeasuredHere).Select(s => s.ConfigId)];

    static PerfTargetSet Targets(string configId) => PerfTargets.Get(configId, PerfCheck.CpuSimulated, CiScaleModel.Scale);

    static double Median(PerfTargetSet targets, string section) => SampleStatistics.MedianOf(targets.Sections[section].Samples!);

    [Theory, MemberData(nameof(MeasuredConfigs))]
    public void Recorded_medians_pass_and_a_2x_slower_denoising_fails(string configId)
    {
        var targets = Targets(configId);

        var atMedian = Check(targets, s => Median(targets, s));
        atMedian.Sections.Where(s => s.Pass == false).Select(s => s.Name).Should().BeEmpty();
        atMedian.Sections.Count(s => s.Pass == true).Should().Be(PerfSections.Targeted.Length, "every targeted section is checked");
        atMedian.Pass.Should().BeTrue();

        var twiceAsSlow = Check(targets, s => Median(targets, s), denoisingSlowdown: 2);
        twiceAsSlow.Sections.Where(s => s.Pass == false).Select(s => s.Name).Should().BeEquivalentTo([PerfSections.Denoising, PerfSections.Total]);
        twiceAsSlow.Pass.Should().BeFalse();
    }

    [Theory, MemberData(nameof(MeasuredConfigs))]
    public void Every_recorded_run_passes_its_limit(string configId)
    {
        // The limit is set above the spread it was set from: no recorded run would have failed it.
        var targets = Targets(configId);
        int runs = targets.Sections.Values.Min(e => e.Samples!.Count);
        for (int i = 0; i < runs; i++)
        {
            int run = i;
            Check(targets, s => targets.Sections[s].Samples![run]).Sections.Where(s => s.Pass == false).Select(s => s.Name)
                .Should().BeEmpty($"{configId}: recorded run {run} must pass");
        }
    }

    [Theory, MemberData(nameof(MeasuredConfigs))]
    public void Each_section_twice_its_median_alone(string configId)
    {
        // A 2x slower section fails where the recorded spread allows it (2 x median above 1.5 x the largest sample):
        // always denoising and total; the overhead-bound sections' medians spread too far for that, and are listed.
        var targets = Targets(configId);
        var detected = new List<string>();
        foreach (var section in PerfSections.Targeted)
        {
            var run = Check(targets, s => Median(targets, s) * (s == section ? 2 : 1));
            var failed = run.Sections.Where(s => s.Pass == false).Select(s => s.Name).ToArray();
            failed.Should().BeSubsetOf([section], "only the slowed section can fail");
            if (failed.Length == 1) detected.Add(section);
            var entry = targets.Sections[section];
            output.WriteLine($"{configId} {section}: 2 x median {2 * Median(targets, section):G4} against limit {targets.For(section)!.Limit:G4}: {(failed.Length == 1 ? "fails" : "passes (recorded spread too wide)")}; samples {string.Join(", ", entry.Samples!)}");
        }
        detected.Should().Contain([PerfSections.Denoising, PerfSections.Total]);
    }

    [Fact]
    public void A_sections_own_unit_overrides_the_sets_and_is_checked_in_it()
    {
        var targets = Targets("n150_cfg1_sp1_tp1");
        targets.For(PerfSections.T5Encoding)!.Unit.Should().Be(PerfTargets.DispatchKopUnit);
        targets.For(PerfSections.Denoising)!.Unit.Should().Be(PerfTargets.GemmGflopUnit);

        var run = Check(targets, s => Median(targets, s));
        var t5 = run.Section(PerfSections.T5Encoding)!;
        t5.Checked.Should().BeApproximately(Median(targets, PerfSections.T5Encoding), 1e-9);
        t5.DispatchKop.Should().HaveCount(3);
    }

    [Fact]
    public void A_run_without_targets_is_not_a_pass_and_its_check_names_every_unchecked_section()
    {
        // What SD35_PERF_CALIBRATE=1 measures: no targets, so nothing is checked.
        var targets = Targets("n150_cfg1_sp1_tp1");
        var run = Check(targets, s => Median(targets, s), withTargets: false);
        run.Sections.Should().OnlyContain(s => s.Pass == null);
        run.Pass.Should().BeFalse();
        var act = () => PerfCheck.AssertChecked(run, "calibration", "results.json");
        act.Should().Throw<Exception>().WithMessage($"*no target was checked for {string.Join(", ", PerfSections.Targeted)}*");
    }

    /// <summary>Three runs whose every targeted section measures <paramref name="value"/> in its unit (denoising's steps × <paramref name="denoisingSlowdown"/>).</summary>
    static PerfRunResult Check(PerfTargetSet targets, Func<string, double> value, double denoisingSlowdown = 1, bool withTargets = true)
    {
        double Seconds(string section) =>
            (targets.Sections[section].Unit ?? targets.Unit) == PerfTargets.DispatchKopUnit ? value(section) * 1000 / DispatchRate : value(section) / GemmRate;
        var run = new Dictionary<string, double>
        {
            [PerfSections.ClipEncoding] = Seconds(PerfSections.ClipEncoding),
            [PerfSections.T5Encoding] = Seconds(PerfSections.T5Encoding),
            [PerfSections.TotalEncoding] = Seconds(PerfSections.TotalEncoding),
            [PerfSections.Vae] = Seconds(PerfSections.Vae),
            [PerfSections.Load] = 1,
        };
        double step = Seconds(PerfSections.Denoising) / targets.Steps;
        for (int j = 0; j < targets.Steps; j++) run[PerfSections.DenoisingStep(j)] = step * denoisingSlowdown;
        run[PerfSections.Denoising] = step * targets.Steps * denoisingSlowdown;
        run[PerfSections.Total] = Seconds(PerfSections.Total) + run[PerfSections.Denoising] - Seconds(PerfSections.Denoising);
        var runs = Enumerable.Repeat(run, 3).ToArray();
        var machine = new MachineFacts
        {
            Cpu = "synthetic", LogicalCores = 2, TorchThreads = 2, Os = "", Runtime = "", GemmShape = GemmBaseline.Shape, GemmGflops = [GemmRate, GemmRate, GemmRate],
            LoadBefore = "", LoadAfter = "", GitCommit = "", DispatchShape = DispatchBaseline.Shape, DispatchRates = [DispatchRate, DispatchRate, DispatchRate],
        };
        var parameters = new PerfConfigParams(targets.Width, targets.Height, targets.Steps, 1, 1, 1, "synthetic", 3.5, 0, 1, 3, false);
        return PerfSession.Build(new RunKey(targets.ConfigId, targets.System, targets.ModelScale), withTargets ? targets : null, DateTimeOffset.UtcNow, parameters, machine,
            runs, [GemmRate, GemmRate, GemmRate], "measured", [DispatchRate, DispatchRate, DispatchRate]);
    }
}
