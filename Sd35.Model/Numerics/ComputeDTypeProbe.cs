using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Numerics;

/// <summary>
/// Which of float32 and bfloat16 this CPU computes faster, measured once per process (a small linear and a small
/// 3×3 convolution in both dtypes, best of a few runs; well under a second even where bf16 is slow): libtorch's bf16
/// GEMM is several times faster than fp32 on CPUs with AVX-512 BF16 or AMX and several times slower on plain AVX2
/// ones, and its bf16 convolution can be hundreds of times slower, so the answer must be measured, never assumed.
/// </summary>
public sealed record ComputeDTypeProbe(double Fp32GemmGflops, double Bf16GemmGflops, double Fp32ConvGflops, double Bf16ConvGflops)
{
    static readonly Lazy<ComputeDTypeProbe> Measured = new(Measure, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>This process's measurement (made on first use).</summary>
    public static ComputeDTypeProbe Cpu => Measured.Value;

    /// <summary>The dtype for GEMM-bound models (the transformer, the text encoders).</summary>
    public ScalarType Gemm => Bf16GemmGflops > Fp32GemmGflops ? ScalarType.BFloat16 : ScalarType.Float32;

    /// <summary>The dtype for convolution-bound models (the VAE).</summary>
    public ScalarType Conv => Bf16ConvGflops > Fp32ConvGflops ? ScalarType.BFloat16 : ScalarType.Float32;

    public override string ToString() =>
        $"GEMM {Name(Gemm)} (fp32 {Fp32GemmGflops:F0}, bf16 {Bf16GemmGflops:F0} GFLOP/s), conv {Name(Conv)} (fp32 {Fp32ConvGflops:F1}, bf16 {Bf16ConvGflops:F1} GFLOP/s)";

    public static string Name(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "fp32",
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float16 => "fp16",
        _ => dtype.ToString(),
    };

    static ComputeDTypeProbe Measure()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var generator = new Generator(7);
        // 384×768·768×768: 0.45 GFLOP, a few ms in fp32; 32→32 channels 3×3 at 24×24: 10.6 MFLOP.
        var x = randn([384, 768], generator: generator);
        var w = randn([768, 768], generator: generator);
        var image = randn([1, 32, 24, 24], generator: generator);
        var kernel = randn([32, 32, 3, 3], generator: generator);
        double gemmFlops = 2.0 * 384 * 768 * 768, convFlops = 2.0 * 32 * 24 * 24 * 32 * 9;
        // Both dtypes alternate, best of five each, so a burst of load from other processes hits both alike.
        (double, double) Rates(Func<Tensor> fp32, Func<Tensor> bf16, double flops)
        {
            fp32().Dispose();
            bf16().Dispose(); // warm-up: kernel selection, thread pool, allocation
            double best32 = double.MaxValue, best16 = double.MaxValue;
            for (int i = 0; i < 5; i++)
            {
                best32 = Math.Min(best32, Seconds(fp32));
                best16 = Math.Min(best16, Seconds(bf16));
            }
            return (flops / best32 / 1e9, flops / best16 / 1e9);
        }
        static double Seconds(Func<Tensor> op)
        {
            long start = Stopwatch.GetTimestamp();
            op().Dispose();
            return Math.Max(Stopwatch.GetElapsedTime(start).TotalSeconds, 1e-9);
        }
        Tensor In(Tensor t) => t.to(ScalarType.BFloat16);
        var (xb, wb, ib, kb) = (In(x), In(w), In(image), In(kernel));
        var (gemm32, gemm16) = Rates(() => nn.functional.linear(x, w), () => nn.functional.linear(xb, wb), gemmFlops);
        var (conv32, conv16) = Rates(() => nn.functional.conv2d(image, kernel, padding: [1, 1]), () => nn.functional.conv2d(ib, kb, padding: [1, 1]), convFlops);
        return new ComputeDTypeProbe(gemm32, gemm16, conv32, conv16);
    }
}
