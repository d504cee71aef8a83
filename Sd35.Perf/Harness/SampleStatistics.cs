namespace Sd35.Perf.Harness;

/// <summary>Mean, standard deviation (n − 1), min, max and median of a section's samples.</summary>
public sealed record SampleStatistics(int Count, double Mean, double Std, double Min, double Max, double Median)
{
    public static SampleStatistics Of(IReadOnlyList<double> samples)
    {
        if (samples.Count == 0) return new(0, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);
        double mean = samples.Average();
        double std = samples.Count > 1 ? Math.Sqrt(samples.Sum(x => (x - mean) * (x - mean)) / (samples.Count - 1)) : 0;
        return new(samples.Count, mean, std, samples.Min(), samples.Max(), MedianOf(samples));
    }

    public static double MedianOf(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        int n = sorted.Length;
        return n == 0 ? double.NaN : n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
