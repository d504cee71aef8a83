using BenchmarkDotNet.Attributes;

namespace Sd35.Perf;

/// <summary>
/// One transformer forward at the two benchmark shapes, fp32 on CPU, next to the GEMM baseline case. "of GEMM" (the
/// primary figure) divides a shape's analytic GFLOP/s by the GEMM case's, both measured in the same summary.
/// </summary>
[Config(typeof(GflopsConfig))]
public class TransformerForwardBenchmark
{
    TransformerWorkload? _workload;

    [Params("gemm", "mmdit_small", "block_sd35_large")]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        // BenchmarkDotNet runs each case in its own process: configure its CPU runtime before the first tensor,
        // as the quick report does (SD35_CPU_RUNTIME=default measures libtorch as it comes).
        if (Environment.GetEnvironmentVariable("SD35_CPU_RUNTIME") != "default") Console.WriteLine(Sd35.Tensors.CpuRuntime.Configure());
        TorchSharp.torch.set_num_threads(Environment.ProcessorCount);
        _workload = Workloads.Create(Shape);
    }

    [Benchmark]
    public void Forward() => _workload!.Run();

    [GlobalCleanup]
    public void Cleanup() => _workload?.Dispose();
}
