using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Numerics;

/// <summary>
/// Which of float32 and bfloat16 this CPU computes faster, measured once per process: libtorch's bf16 GEMM is 1.5–3×
/// faster than fp32 on CPUs with AVX-512 BF16 or AMX and 6–8× slower on plain AVX2 ones, and its bf16 convolution can
/// be hundreds of times slower, so the answer must be measured, never assumed. The measuring
/// (<see cref="Measure"/>) and the deciding (<see cref="Faster"/>, a pure function of two rates) are apart, so the
/// rule is tested without timing anything.
/// </summary>
public sealed record ComputeDTypeProbe(double Fp32GemmGflops, double Bf16GemmGflops, double Fp32ConvGflops, double Bf16ConvGflops)
{
    /// <summary>
    /// How much faster bf16 must measure to be chosen. fp32 is the more accurate dtype, so a near tie goes to it; and
    /// where bf16 is the faster one it is so by 1.5× or more (native bf16 GEMMs), while the noise a busy machine leaves
    /// in a best-of-many rate is tens of percent, so a 1.3× bar keeps a flip between runs to machines where the choice
    /// hardly matters.
    /// </summary>
    public const double Bf16Margin = 1.3;

    static readonly Lazy<ComputeDTypeProbe> Measured = new(() => Measure(), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>This process's measurement (made on first use).</summary>
    public static ComputeDTypeProbe Cpu => Measured.Value;

    /// <summary>The dtype for GEMM-bound models (the transformer, the text encoders).</summary>
    public ScalarType Gemm => Faster(Fp32GemmGflops, Bf16GemmGflops);

    /// <summary>The dtype for convolution-bound models (the VAE).</summary>
    public ScalarType Conv => Faster(Fp32ConvGflops, Bf16ConvGflops);

    /// <summary>The measurement's wall time in seconds, warm-up included (0 where the rates were given, not measured).</summary>
    public double Seconds { get; init; }

    /// <summary>How many interleaved fp32/bf16 pairs each rate is the best of (GEMM, convolution); 0 where given.</summary>
    public (int Gemm, int Conv) Pairs { get; init; }

    /// <summary>
    /// bf16 where it computes at least <see cref="Bf16Margin"/> times the fp32 rate, otherwise fp32 (a rate that is not a
    /// positive number, a failed measurement, never selects bf16).
    /// </summary>
    public static ScalarType Faster(double fp32Gflops, double bf16Gflops) =>
        bf16Gflops > 0 && bf16Gflops >= Bf16Margin * fp32Gflops ? ScalarType.BFloat16 : ScalarType.Float32;

    /// <summary>
    /// The rate of <paramref name="flops"/> done in the fastest of <paramref name="seconds"/>: load from other
    /// processes only ever adds time to a run, so the fastest of many is the one it disturbed least.
    /// </summary>
    public static double Rate(double flops, IEnumerable<double> seconds) => flops / Math.Max(seconds.Min(), 1e-9) / 1e9;

    public override string ToString() =>
        $"GEMM {Name(Gemm)} (fp32 {Fp32GemmGflops:F0}, bf16 {Bf16GemmGflops:F0} GFLOP/s), conv {Name(Conv)} (fp32 {Fp32ConvGflops:F1}, bf16 {Bf16ConvGflops:F1} GFLOP/s)" +
        (Seconds > 0 ? $"; bf16 needs ≥ {Bf16Margin}×; best of {Pairs.Gemm}/{Pairs.Conv} interleaved pairs, {Seconds:F2} s" : "");

    public static string Name(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "fp32",
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float16 => "fp16",
        _ => dtype.ToString(),
    };

    /// <summary>
    /// How long the measurement runs: each operation's fp32/bf16 pairs go on until <see cref="Budget"/> has passed and
    /// at least <see cref="MinPairs"/> are done, or <see cref="MaxPairs"/> are. The budget is per operation, so a quiet
    /// machine spends about twice it (plus one warm-up each); a machine where bf16 is slow stops at the minimum count.
    /// </summary>
    public sealed record Sampling(TimeSpan Budget, int MinPairs, int MaxPairs)
    {
        /// <summary>0.15 s per operation, 5 to 200 pairs: under half a second in all on a quiet machine, fast or slow at bf16.</summary>
        public static Sampling Default { get; } = new(TimeSpan.FromSeconds(0.15), 5, 200);

        public override string ToString() => $"{Budget.TotalSeconds:0.###} s per operation, {MinPairs} to {MaxPairs} pairs";
    }

    /// <summary>
    /// Measures this CPU now (<see cref="Cpu"/> keeps the first measurement for the process), on one intra-op thread: a
    /// 384×768·768×768 linear (0.45 GFLOP, a few ms in fp32) and a 32→32-channel 3×3 convolution at 24×24 (10.6 MFLOP), each in both dtypes,
    /// in alternating pairs whose order flips every pair (fp32 bf16, bf16 fp32, …), so a burst of load from other
    /// processes, or a drift in clock speed, hits both dtypes alike; each rate is the best of its samples
    /// (<see cref="Rate"/>). The shapes are small so that a CPU where bf16 is hundreds of times slower still finishes
    /// in a fraction of a second.
    /// </summary>
    public static ComputeDTypeProbe Measure(Sampling? sampling = null)
    {
        sampling ??= Sampling.Default;
        long start = Stopwatch.GetTimestamp();
        // One intra-op thread: on a busy machine a parallel op waits for every one of its threads to be scheduled, so
        // with two or more nearly every sample is slowed (measured at load 9.4-9.9 on this 2-core machine: 3 of 8 probes
        // at libtorch's 2 threads picked differently, 0 of 8 at one thread). What is measured is the per-core kernel,
        // which is what tells a native-bf16 CPU from an AVX2 one; the small shapes say little about scaling anyway.
        using var threads = Sd35.Mesh.IntraOpThreads.Enter(1);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var generator = new Generator(7);
        var x = randn([384, 768], generator: generator);
        var w = randn([768, 768], generator: generator);
        var image = randn([1, 32, 24, 24], generator: generator);
        var kernel = randn([32, 32, 3, 3], generator: generator);
        double gemmFlops = 2.0 * 384 * 768 * 768, convFlops = 2.0 * 32 * 24 * 24 * 32 * 9;
        Tensor In(Tensor t) => t.to(ScalarType.BFloat16);
        var (xb, wb, ib, kb) = (In(x), In(w), In(image), In(kernel));
        var gemm = TimePairs(() => nn.functional.linear(x, w), () => nn.functional.linear(xb, wb), sampling);
        var conv = TimePairs(() => nn.functional.conv2d(image, kernel, padding: [1, 1]), () => nn.functional.conv2d(ib, kb, padding: [1, 1]), sampling);
        return new ComputeDTypeProbe(Rate(gemmFlops, gemm.Fp32), Rate(gemmFlops, gemm.Bf16), Rate(convFlops, conv.Fp32), Rate(convFlops, conv.Bf16))
        {
            Seconds = Stopwatch.GetElapsedTime(start).TotalSeconds,
            Pairs = (gemm.Fp32.Count, conv.Fp32.Count),
        };
    }

    /// <summary>Seconds of each run of <paramref name="fp32"/> and <paramref name="bf16"/>, taken in pairs of alternating order.</summary>
    static (List<double> Fp32, List<double> Bf16) TimePairs(Func<Tensor> fp32, Func<Tensor> bf16, Sampling sampling)
    {
        // Warm-up, not timed: kernel selection (oneDNN builds a primitive per shape and dtype), the thread pool, allocation.
        fp32().Dispose();
        bf16().Dispose();
        var (times32, times16) = (new List<double>(), new List<double>());
        long start = Stopwatch.GetTimestamp();
        for (int pair = 0; pair < sampling.MaxPairs; pair++)
        {
            if (pair >= sampling.MinPairs && Stopwatch.GetElapsedTime(start) >= sampling.Budget) break;
            if (pair % 2 == 0)
            {
                times32.Add(TimeOf(fp32));
                times16.Add(TimeOf(bf16));
            }
            else
            {
                times16.Add(TimeOf(bf16));
                times32.Add(TimeOf(fp32));
            }
        }
        return (times32, times16);
    }

    static double TimeOf(Func<Tensor> op)
    {
        long start = Stopwatch.GetTimestamp();
        op().Dispose();
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }
}
