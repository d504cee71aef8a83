using System.Diagnostics;

namespace Sd35.Perf;

/// <summary>
/// The quick report: each workload's median time over a few runs, its analytic GFLOP/s and speed-up over the
/// reference stack, next to the GEMM rate measured in the same process just before it. On a machine shared with
/// other jobs the absolute time moves with the load; the fraction of the GEMM rate ("of gemm") is what to compare
/// between runs made under different load.
/// </summary>
public static class QuickReport
{
    public static void Run(string[] args)
    {
        int repeats = 3;
        var names = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--repeat") repeats = int.Parse(args[++i]);
            else names.Add(args[i]);
        }
        if (names.Count == 0) names.AddRange(Workloads.Names);

        Console.WriteLine($"load average: {LoadAverage()}; {Environment.ProcessorCount} threads; median of {repeats}");
        Console.WriteLine($"{"workload",-18} {"seconds",8} {"GFLOP/s",8} {"vs reference",12} {"gemm GFLOP/s",13} {"of gemm",8}");
        using var gemm = Workloads.Create("gemm");
        foreach (var name in names)
        {
            using var workload = Workloads.Create(name);
            double gemmSeconds = Median(gemm, 3);
            double seconds = Median(workload, repeats);
            double gemmRate = gemm.Flops / gemmSeconds / 1e9;
            double rate = workload.Flops / seconds / 1e9;
            string vsReference = workload.ReferenceSeconds > 0 ? $"{workload.ReferenceSeconds / seconds,11:F2}×" : $"{"",12}";
            Console.WriteLine($"{name,-18} {seconds,8:F3} {rate,8:F1} {vsReference} {gemmRate,13:F1} {rate / gemmRate,8:P0}");
        }
        Console.WriteLine($"load average: {LoadAverage()}");
    }

    static double Median(TransformerWorkload workload, int repeats)
    {
        workload.Run(); // warm-up
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            var watch = Stopwatch.StartNew();
            workload.Run();
            times[i] = watch.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return times[repeats / 2];
    }

    static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
