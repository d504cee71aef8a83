using System.Diagnostics;
using BenchmarkDotNet.Running;
using Sd35.Perf;

// `dotnet run -c Release --project Sd35.Perf -- quick` times each workload in this process (a smoke check);
// any other arguments go to BenchmarkDotNet (e.g. `--filter *Transformer*`).
if (args is ["quick", ..])
{
    TorchSharp.torch.set_num_threads(Environment.ProcessorCount);
    Console.WriteLine($"{"workload",-18} {"seconds",8} {"GFLOP/s",8} {"vs reference",12}");
    foreach (var name in args.Length > 1 ? args[1..] : Workloads.Names)
    {
        using var workload = Workloads.Create(name);
        workload.Run(); // warm-up
        var watch = Stopwatch.StartNew();
        workload.Run();
        double seconds = watch.Elapsed.TotalSeconds;
        Console.WriteLine($"{name,-18} {seconds,8:F3} {workload.Flops / seconds / 1e9,8:F1} {workload.ReferenceSeconds / seconds,11:F2}×");
    }
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(TransformerForwardBenchmark).Assembly).Run(args);
