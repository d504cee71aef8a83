using FluentAssertions;
using Sd35.Perf.Harness;
using Sd35.Perf.Report;

namespace Sd35.Perf.Tests;

/// <summary>The report's verdicts on synthetic samples: the direction of the test and the threshold.</summary>
public class ComparisonTests
{
    static readonly double[] Base = [10.0, 10.3, 9.8, 10.1, 9.9, 10.2, 10.0, 9.7];

    static ResultSet Set(string name, IEnumerable<double> samples) => new()
    {
        Source = name, Runs = [], Series = [new Series("g", "denoising", PerfTargets.GemmGflopUnit, samples.ToArray())],
    };

    [Theory]
    [InlineData(2.0, Verdict.Slower)]
    [InlineData(0.5, Verdict.Faster)]
    [InlineData(1.02, Verdict.Same)]
    public void Verdict_follows_the_ratio_beyond_the_threshold(double factor, Verdict expected)
    {
        foreach (var test in new[] { "mannwhitney", "welch" })
        {
            var rows = Comparison.Compare(Set("a", Base), Set("b", Base.Select(x => x * factor)), new ComparisonOptions(test, Threshold: 0.10));
            rows.Should().ContainSingle().Which.Verdict.Should().Be(expected, $"{test} with current = {factor} × baseline");
        }
    }

    [Fact]
    public void Sections_present_on_one_side_only_are_not_comparable()
    {
        var current = new ResultSet { Source = "b", Runs = [], Series = [new Series("g", "vae", PerfTargets.SecondsUnit, [1.0, 1.1])] };
        var rows = Comparison.Compare(Set("a", Base), current, new ComparisonOptions());
        rows.Select(r => (r.Name, r.Verdict)).Should().BeEquivalentTo([("denoising", Verdict.NotComparable), ("vae", Verdict.NotComparable)]);
    }

    [Fact]
    public void BenchmarkDotNet_full_json_gives_the_workload_result_iterations_in_seconds()
    {
        var set = ResultSet.Load(Path.Combine(AppContext.BaseDirectory, "TestData", "Sd35.Perf.ComponentBenchmarks-report-full.json"));

        set.Series.Select(s => s.Name).Should().Equal(
            "Sd35.Perf.ComponentBenchmarks.ClipL", "Sd35.Perf.ComponentBenchmarks.ClipG", "Sd35.Perf.ComponentBenchmarks.T5",
            "Sd35.Perf.ComponentBenchmarks.Vae", "Sd35.Perf.ComponentBenchmarks.TransformerForward");
        set.Series.Should().OnlyContain(s => s.Samples.Count >= 4 && s.Samples.Count <= 5 && s.Unit == PerfTargets.SecondsUnit && s.Group == "BenchmarkDotNet Sd35.Perf.ComponentBenchmarks");
        set.Series[^1].Stats.Mean.Should().BeApproximately(9.044, 0.001, "the export's own mean is 9,044.1 ms");
        Comparison.Compare(set, set, new ComparisonOptions()).Should().OnlyContain(r => r.Verdict == Verdict.Same);
    }

    // The report's option errors (a missing --baseline, a threshold out of range, an unknown test) are PerfCommandLineTests'.

    [Fact]
    public void Missing_result_set_exits_2_naming_it()
    {
        var error = new StringWriter();
        ReportCommand.Run(new ReportArguments("/nonexistent/a.json", "/nonexistent/b.json", Path.GetTempPath(), null, new ComparisonOptions()), TextWriter.Null, error).Should().Be(2);
        error.ToString().Should().Contain("/nonexistent/a.json");
    }
}
