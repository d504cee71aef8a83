using System.CommandLine;
using System.Diagnostics;

namespace Sd35.Perf;

/// <summary>
/// The quick report (<c>workload-speed</c>): each workload's median time over a few runs and, as the primary figure,
/// its analytic GFLOP/s as a fraction of the rate of a GEMM run in the same process just before each run ("of gemm").
/// On a machine shared with other jobs the absolute time moves with the load; "of gemm" is what to compare between runs
/// and machines. The reference stack's times are printed as labelled context only: they were measured in another
/// sitting, so no speed-up is computed from them.
/// </summary>
public static class QuickReport
{
    /// <summary><c>workload-speed [workload…] [--repeat N]</c>.</summary>
    public static Command Command()
    {
        var workloads = new Argument<string[]>("workload")
        {
            Description = "Workloads to time.",
            Arity = ArgumentArity.ZeroOrMore,
            DefaultValueFactory = _ => Workloads.Names,
        };
        workloads.AcceptOnlyFromAmong([.. Workloads.Names, "gemm"]);
        var repeat = PerfOptions.Repeat(3);
        var command = new Command("workload-speed", "Times the benchmark workloads, each run against a GEMM run just before it (\"of gemm\" is the figure to compare).") { workloads, repeat };
        command.SetAction(r =>
        {
            PerfProcess.ForComputeTiming();
            Run(r.GetValue(workloads)!, r.GetValue(repeat));
        });
        return command;
    }

    public static void Run(IReadOnlyList<string> names, int repeats)
    {
        Console.WriteLine($"load average: {Harness.MachineFacts.LoadAverage()}; {Environment.ProcessorCount} threads; median of {repeats}");
        foreach (var name in names.Where(n => Workloads.CostOf(n).Reference.Count > 0))
            Console.WriteLine($"reference stack for {name}: " + string.Join("; ", Workloads.CostOf(name).Reference.Select(r => r.Label)) + " (not measured beside this run: no ratio)");
        Console.WriteLine($"{"workload",-18} {"of gemm",8} {"seconds",8} {"GFLOP/s",8} {"gemm GFLOP/s",13} {"page faults",12}");
        using var gemm = Workloads.Create("gemm");
        foreach (var name in names)
        {
            using var workload = Workloads.Create(name);
            gemm.Run(); // warm-up
            workload.Run();
            // Each run is paired with a GEMM just before it, so a burst of load from other jobs shows in both.
            var seconds = new double[repeats];
            var gemmRates = new double[repeats];
            var fractions = new double[repeats];
            var faults = new double[repeats];
            for (int i = 0; i < repeats; i++)
            {
                gemmRates[i] = gemm.Flops / Time(gemm) / 1e9;
                long faults0 = MinorFaults();
                seconds[i] = Time(workload);
                faults[i] = MinorFaults() - faults0;
                fractions[i] = workload.Flops / seconds[i] / 1e9 / gemmRates[i];
            }
            double median = Harness.SampleStatistics.MedianOf(seconds), rate = workload.Flops / median / 1e9;
            Console.WriteLine($"{name,-18} {Harness.SampleStatistics.MedianOf(fractions),8:P0} {median,8:F3} {rate,8:F1} {Harness.SampleStatistics.MedianOf(gemmRates),13:F1} {Harness.SampleStatistics.MedianOf(faults),12:F0}   (min {seconds.Min():F3} s)");
        }
        Console.WriteLine($"load average: {Harness.MachineFacts.LoadAverage()}");
    }

    static double Time(TransformerWorkload workload)
    {
        var watch = Stopwatch.StartNew();
        workload.Run();
        return watch.Elapsed.TotalSeconds;
    }

    /// <summary>This process's minor page faults so far (field 10 of /proc/self/stat): memory touched for the first time.</summary>
    static long MinorFaults()
    {
        if (!File.Exists("/proc/self/stat")) return 0;
        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[7]);
    }
}
