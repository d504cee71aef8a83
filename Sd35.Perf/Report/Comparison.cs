using Perfolizer.Mathematics.Common;
using Perfolizer.Mathematics.SignificanceTesting;
using Perfolizer.Mathematics.SignificanceTesting.Base;
using Perfolizer.Mathematics.SignificanceTesting.MannWhitney;
using Perfolizer.Metrology;
using Sd35.Perf.Harness;

namespace Sd35.Perf.Report;

public enum Verdict { Same, Faster, Slower, NotComparable }

/// <summary>One quantity in both result sets, and what the test concluded.</summary>
public sealed record ComparisonRow(string Group, string Name, string Unit, Series? Baseline, Series? Current, double Ratio, Verdict Verdict, string Note);

/// <summary>How to compare: the two-sample test (Mann–Whitney or Welch, as BenchmarkDotNet's Perfolizer ships them), the relative threshold and the significance level.</summary>
public sealed record ComparisonOptions(string Test = "mannwhitney", double Threshold = 0.10, double Alpha = 0.05)
{
    public ISignificanceTwoSampleTest TwoSampleTest => Test switch
    {
        "mannwhitney" => MannWhitneyTest.Instance,
        "welch" => WelchTest.Instance,
        _ => throw new ArgumentException($"--test '{Test}': expected mannwhitney or welch"),
    };
}

/// <summary>
/// Section-by-section comparison in the manner of dotnet/performance's ResultsComparer: an equivalence test with a
/// relative threshold (the current samples are compared with the baseline shifted by ±threshold) decides
/// faster / slower / same; a change inside the threshold, or one the samples cannot tell apart, is "same".
/// </summary>
public static class Comparison
{
    public static IReadOnlyList<ComparisonRow> Compare(ResultSet baseline, ResultSet current, ComparisonOptions options)
    {
        var test = new SimpleEquivalenceTest(options.TwoSampleTest);
        var threshold = Threshold.Parse($"{options.Threshold * 100:0.###}%");
        var rows = new List<ComparisonRow>();
        var currentByKey = current.Series.GroupBy(s => s.Key).ToDictionary(g => g.Key, g => g.Last());
        var seen = new HashSet<string>();
        foreach (var b in baseline.Series)
        {
            if (!seen.Add(b.Key)) continue;
            currentByKey.TryGetValue(b.Key, out var c);
            rows.Add(Row(b, c, test, threshold, options.Alpha));
        }
        foreach (var c in current.Series.Where(c => !seen.Contains(c.Key)))
            rows.Add(new ComparisonRow(c.Group, c.Name, c.Unit, null, c, double.NaN, Verdict.NotComparable, "only in current"));
        return rows;
    }

    static ComparisonRow Row(Series b, Series? c, SimpleEquivalenceTest test, Threshold threshold, double alpha)
    {
        if (c is null) return new(b.Group, b.Name, b.Unit, b, null, double.NaN, Verdict.NotComparable, "only in baseline");
        if (b.Unit != c.Unit) return new(b.Group, b.Name, b.Unit, b, c, double.NaN, Verdict.NotComparable, $"units differ ({b.Unit} vs {c.Unit})");
        double ratio = c.Stats.Median / b.Stats.Median;
        if (b.Samples.Count < 2 || c.Samples.Count < 2)
            return new(b.Group, b.Name, b.Unit, b, c, ratio, Verdict.NotComparable, "fewer than 2 samples");
        if (b.Samples.All(x => x == 0) && c.Samples.All(x => x == 0))
            return new(b.Group, b.Name, b.Unit, b, c, 1, Verdict.Same, "all zero");
        var result = test.Perform(new Pragmastat.Sample(c.Samples.ToArray()), new Pragmastat.Sample(b.Samples.ToArray()), threshold, new SignificanceLevel(alpha));
        var verdict = result switch
        {
            ComparisonResult.Greater => Verdict.Slower,
            ComparisonResult.Lesser => Verdict.Faster,
            _ => Verdict.Same,
        };
        string note = result == ComparisonResult.Unknown ? "test inconclusive" : "";
        return new(b.Group, b.Name, b.Unit, b, c, ratio, verdict, note);
    }
}
