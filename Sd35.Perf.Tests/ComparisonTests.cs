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

    [Theory]
    [InlineData(new[] { "--current", "x" }, "--baseline and --current")]
    [InlineData(new[] { "--baseline", "a", "--current", "b", "--threshold", "2" }, "--threshold must be a number between 0 and 1")]
    [InlineData(new[] { "--baseline", "a", "--current", "b", "--test", "ttest" }, "--test 'ttest'")]
    [InlineData(new[] { "--baseline", "a", "--current", "b", "--colour" }, "unknown option '--colour'")]
    public void Bad_report_arguments_are_named(string[] args, string expected)
    {
        var act = () => ReportArguments.Parse(args);
        act.Should().Throw<ArgumentException>().Which.Message.Should().Contain(expected);
    }

    [Fact]
    public void Missing_result_set_exits_2_naming_it()
    {
        var error = new StringWriter();
        ReportCommand.Run(["--baseline", "/nonexistent/a.json", "--current", "/nonexistent/b.json"], TextWriter.Null, error).Should().Be(2);
        error.ToString().Should().Contain("/nonexistent/a.json");
    }
}
