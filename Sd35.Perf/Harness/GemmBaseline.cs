using System.Diagnostics;
using static TorchSharp.torch;

namespace Sd35.Perf.Harness;

/// <summary>
/// The same-process GEMM rate: one 2048×2432 by 2432×2432 <c>linear</c> (half the block's square projection,
/// 24.2 GFLOP), timed several times and the median taken. Measured just before each timed run, it says how much of
/// the machine the run had; seconds × this rate is the perf tests' machine-independent unit.
/// </summary>
public sealed class GemmBaseline : IDisposable
{
    public const long M = 2048, K = 2432, N = 2432;
    public const string Shape = "2048x2432 · 2432x2432 fp32 linear";
    public static double Gflop => 2.0 * M * K * N / 1e9;

    readonly Tensor _x;
    readonly Tensor _w;

    public GemmBaseline()
    {
        using var generator = new Generator(0);
        _x = randn([M, K], generator: generator);
        _w = randn([N, K], generator: generator);
        RunOnce(); // first call pays for thread-pool start-up and page faults
    }

    /// <summary>GFLOP/s, the median of <paramref name="repeats"/> timed GEMMs.</summary>
    public double Measure(int repeats = 3)
    {
        var rates = new double[repeats];
        for (int i = 0; i < repeats; i++) rates[i] = Gflop / RunOnce();
        return SampleStatistics.MedianOf(rates);
    }

    double RunOnce()
    {
        var watch = Stopwatch.StartNew();
        using (var y = nn.functional.linear(_x, _w)) { }
        return watch.Elapsed.TotalSeconds;
    }

    public void Dispose()
    {
        _x.Dispose();
        _w.Dispose();
    }
}
