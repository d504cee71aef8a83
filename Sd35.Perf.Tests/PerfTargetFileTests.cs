using System.Text.Json.Nodes;
using FluentAssertions;
using Sd35.Perf.Harness;
using Sd35.Profiling;

namespace Sd35.Perf.Tests;

/// <summary>
/// The targets file cannot drift from what justifies it, and the modeled band is two-sided: a copy of
/// fixtures/perf/targets.json broken one way at a time fails to load naming the key and section; a modeled
/// prediction of zero, or far above the reference, fails; a section the modeled workload leaves out is reported not
/// applicable (docs/mutation-proofs.md).
/// </summary>
public sealed class PerfTargetFileTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("sd35-targets-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>The real file with <paramref name="change"/> applied to the set of <paramref name="configId"/>/<paramref name="system"/>.</summary>
    string Broken(string configId, string system, Action<JsonObject> change)
    {
        var root = JsonNode.Parse(File.ReadAllText(PerfTargets.DefaultPath))!;
        var set = root["targets"]!.AsArray().Single(t => (string)t!["config_id"]! == configId && (string)t["system"]! == system)!.AsObject();
        change(set);
        var path = Path.Combine(_folder, "targets.json");
        File.WriteAllText(path, root.ToJsonString());
        return path;
    }

    [Fact]
    public void The_real_file_loads() => PerfTargets.Load().Should().NotBeEmpty();

    [Fact]
    public void A_missing_target_fails_naming_the_section()
    {
        var path = Broken("t3k_cfg2_sp2_tp2", PerfCheck.CpuSimulated, set => set["sections"]!.AsObject().Remove(PerfSections.Vae));
        var act = () => PerfTargets.Load(path);
        act.Should().Throw<InvalidDataException>().WithMessage("*t3k_cfg2_sp2_tp2/cpu_sim/ci_small has no target for section 'vae'*");
    }

    [Fact]
    public void A_measured_limit_loosened_beyond_its_samples_fails()
    {
        // The old gate: 5x the calibration median for an overhead-bound section.
        var path = Broken("n150_cfg1_sp1_tp1", PerfCheck.CpuSimulated, set => set["sections"]![PerfSections.ClipEncoding]!["tolerance"] = 4.0);
        var act = () => PerfTargets.Load(path);
        act.Should().Throw<InvalidDataException>().WithMessage("*section clip_encoding*do not follow from its samples*");
    }

    [Fact]
    public void A_measured_target_without_its_samples_fails()
    {
        var path = Broken("tg_cfg2_sp4_tp4", PerfCheck.CpuSimulated, set => set["sections"]![PerfSections.Denoising]!.AsObject().Remove("samples"));
        var act = () => PerfTargets.Load(path);
        act.Should().Throw<InvalidDataException>().WithMessage("*section denoising needs 'samples'*");
    }

    [Fact]
    public void A_modeled_target_without_its_lower_edge_fails()
    {
        var path = Broken("tg_cfg2_sp4_tp4", "galaxy", set => set["sections"]![PerfSections.Total]!.AsObject().Remove("lower"));
        var act = () => PerfTargets.Load(path);
        act.Should().Throw<InvalidDataException>().WithMessage("*section total needs 'lower', 'upper' and 'source'*");
    }

    [Theory]
    [InlineData("t3k_cfg2_sp2_tp2", "t3k")]
    [InlineData("tg_cfg2_sp4_tp4", "galaxy")]
    public void A_modeled_prediction_of_zero_or_far_above_the_reference_fails_every_applicable_section(string configId, string system)
    {
        var targets = PerfTargets.Get(configId, system, "large");
        var notApplicable = ModeledPerf.NotApplicable(system);

        var zero = ModeledPerf.ToResult(configId, system, targets, PerfSections.Targeted.ToDictionary(s => s, _ => 0.0));
        zero.Sections.Where(s => s.Pass == false).Select(s => s.Name).Should().BeEquivalentTo(PerfSections.Targeted.Except(notApplicable.Keys));
        zero.Pass.Should().BeFalse();

        var tooSlow = ModeledPerf.ToResult(configId, system, targets, PerfSections.Targeted.ToDictionary(s => s, s => 2 * targets.Sections[s].Value));
        tooSlow.Sections.Where(s => s.Pass == false).Select(s => s.Name).Should().BeEquivalentTo(PerfSections.Targeted.Except(notApplicable.Keys));

        // Just inside both edges passes, so the band is what fails the two above.
        var inside = ModeledPerf.ToResult(configId, system, targets, PerfSections.Targeted.ToDictionary(s => s, s => targets.Sections[s].Lower!.Value * 1.01));
        inside.Pass.Should().BeTrue();
        var act = () => PerfCheck.AssertChecked(zero, "mutant", "results.json");
        act.Should().Throw<Exception>().WithMessage("*outside [*");
    }

    [Fact]
    public void T5_encoding_on_the_8_chip_box_is_not_applicable_not_a_pass()
    {
        // The reference's t3k runs have T5 off, so the modeled run has no T5 encoder: 0 s by construction.
        var targets = PerfTargets.Get("t3k_cfg2_sp2_tp2", "t3k", "large");
        var run = ModeledPerf.ToResult("t3k_cfg2_sp2_tp2", "t3k", targets, PerfSections.Targeted.ToDictionary(s => s, s => targets.Sections[s].Value));
        var t5 = run.Section(PerfSections.T5Encoding)!;
        t5.Pass.Should().BeNull();
        t5.NotApplicable.Should().Contain("T5 off");
        PerfTable.Markdown(run).Should().Contain("| t5_encoding |").And.Contain("n/a (T5 off");
        ModeledPerf.NotApplicable("galaxy").Should().BeEmpty("the Galaxy's reference runs have T5 on");
    }
}
