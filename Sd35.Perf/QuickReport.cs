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
    /// <summary><c>workload-speed [workload…] [--repeat N] [--min-of-gemm FRACTION]</c>.</summary>
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
        var minimum = new Option<double?>("--min-of-gemm")
        {
            Description = "Exit with code 1, naming each workload whose median \"of gemm\" falls below this fraction (0.8: 80 %): a gate against the same run's GEMM, not against a time.",
            HelpName = "fraction",
        };
        minimum.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<double?>() is { } value && !(value > 0)) r.AddError($"--min-of-gemm must be a fraction above 0; got {value}");
        });
        var command = new Command("workload-speed", "Times the benchmark workloads, each run against a GEMM run just before it (\"of gemm\" is the figure to compare).") { workloads, repeat, minimum };
        command.SetAction(r =>
        {
            PerfProcess.ForComputeTiming();
            var fractions = Run(r.GetValue(workloads)!, r.GetValue(repeat));
            if (r.GetValue(minimum) is not { } floor) return 0;
            var below = fractions.Where(f => f.Value < floor).Select(f => $"{f.Key} {f.Value:P0}").ToArray();
            if (below.Length == 0)
            {
                Console.WriteLine($"every workload at or above {floor:P0} of gemm");
                return 0;
            }
            Console.WriteLine($"below {floor:P0} of gemm: {string.Join(", ", below)}");
            return 1;
        });
        return command;
    }

    /// <returns>each workload's median "of gemm"</returns>
    public static IReadOnlyDictionary<string, double> Run(IReadOnlyList<string> names, int repeats)
    {
        var medians = new Dictionary<string, double>();
        Console.WriteLine($"load average: {Harness.MachineFacts.LoadAverage()}; {Environment.ProcessorCount} threads; median of {repeats}");
        foreach (var name in names.Where(n => Workloads.CostOf(n).Reference.Count > 0))
            Console.WriteLine($"reference stack for {name}: " + string.Join("; ", Workloads.CostOf(name).Reference.Select(r => r.Label)) + " (not measured beside this run: no ratio)");
        Console.WriteLine($"{"workload",-22} {"of gemm",8} {"seconds",8} {"GFLOP/s",8} {"gemm GFLOP/s",13} {"page faults",12}");
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
            medians[name] = Harness.SampleStatistics.MedianOf(fractions);
            Console.WriteLine($"{name,-22} {Harness.SampleStatistics.MedianOf(fractions),8:P0} {median,8:F3} {rate,8:F1} {Harness.SampleStatistics.MedianOf(gemmRates),13:F1} {Harness.SampleStatistics.MedianOf(faults),12:F0}   (min {seconds.Min():F3} s)");
        }
        Console.WriteLine($"load average: {Harness.MachineFacts.LoadAverage()}");
        return medians;
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
