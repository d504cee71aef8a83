using System.Diagnostics;
using static TorchSharp.torch;

namespace Sd35.Perf.Harness;

/// <summary>
/// The same-process dispatch rate: what the overhead-bound sections of the CI-scale model spend their time on. The tiny
/// encoders and the VAE at CI scale do little arithmetic; their time is op dispatch and hand-offs between rank threads
/// (collectives, broadcasts of the prompt), which neither speed up nor slow down with the GEMM rate (a busy neighbour
/// halves a GEMM but delays a thread wake-up by a scheduler quantum). So the probe is that: two threads hand a token back
/// and forth, each running one small tensor op per turn, and the rate is hand-offs per second (median of several bursts).
/// Seconds × this rate / 1000 (<see cref="PerfTargets.DispatchKopUnit"/>) is the unit of those sections' targets.
/// </summary>
public sealed class DispatchBaseline : IDisposable
{
    public const int HandOffsPerBurst = 2000;
    public const string Shape = "2000 hand-offs between two threads, one [64, 64] fp32 add per turn";

    readonly Tensor _a = ones(64, 64);
    readonly Tensor _b = ones(64, 64);

    public DispatchBaseline() => RunOnce(); // the first burst pays for thread start-up

    /// <summary>Hand-offs per second, the median of <paramref name="repeats"/> bursts.</summary>
    public double Measure(int repeats = 5)
    {
        var rates = new double[repeats];
        for (int i = 0; i < repeats; i++) rates[i] = HandOffsPerBurst / RunOnce();
        return SampleStatistics.MedianOf(rates);
    }

    double RunOnce()
    {
        using var ping = new SemaphoreSlim(0);
        using var pong = new SemaphoreSlim(0);
        var partner = new Thread(() =>
        {
            for (int i = 0; i < HandOffsPerBurst / 2; i++)
            {
                ping.Wait();
                using (var r = _b.add(_a)) { }
                pong.Release();
            }
        }) { IsBackground = true };
        var watch = Stopwatch.StartNew();
        partner.Start();
        for (int i = 0; i < HandOffsPerBurst / 2; i++)
        {
            using (var r = _a.add(_b)) { }
            ping.Release();
            pong.Wait();
        }
        partner.Join();
        return watch.Elapsed.TotalSeconds;
    }

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
    }
}
