using System.CommandLine;
using Sd35.Numerics;

namespace Sd35.Perf;

/// <summary>
/// <c>compute-dtype-probe [--repeat N]</c>: runs the measurement that picks the CPU's compute dtype
/// (<see cref="ComputeDTypeProbe.Measure"/>, what <c>--compute-dtype auto</c> runs once at start) N times in one
/// process, set up as the demo and the server set theirs up, and prints each one's rates, picks, pairs and wall time with
/// the load average, then how often each pick came out: how stable the probe is on this machine under its present
/// load, and what it costs.
/// </summary>
public static class ComputeDTypeProbeCommand
{
    public static Command Command()
    {
        var repeat = PerfOptions.Repeat(5, "measurements to make, one after another");
        var command = new Command("compute-dtype-probe", "Runs the CPU's fp32/bf16 probe (what --compute-dtype auto measures) several times and prints its rates, picks and wall time.") { repeat };
        command.SetAction(r =>
        {
            // The process the demo and the server measure in (CPU runtime switches, NNPACK off, libtorch's threads as they
            // come), not the compute-timing set-up of the other commands: the rates are the ones --compute-dtype auto sees.
            Console.WriteLine(Sd35.Hosting.ProcessSetup.Program.Apply());
            Run(r.GetValue(repeat));
        });
        return command;
    }

    static void Run(int repeats)
    {
        Console.WriteLine($"load average: {Harness.MachineFacts.LoadAverage()}; {Environment.ProcessorCount} threads; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; " +
                          $"budget {ComputeDTypeProbe.Sampling.Default}");
        var probes = new List<ComputeDTypeProbe>();
        for (int i = 0; i < repeats; i++)
        {
            var probe = ComputeDTypeProbe.Measure();
            probes.Add(probe);
            Console.WriteLine($"{i + 1}: {probe}");
        }
        string Tally(Func<ComputeDTypeProbe, TorchSharp.torch.ScalarType> pick) =>
            string.Join(", ", probes.GroupBy(pick).Select(g => $"{ComputeDTypeProbe.Name(g.Key)} {g.Count()}×"));
        var seconds = probes.Select(p => p.Seconds).Order().ToArray();
        Console.WriteLine($"GEMM picks: {Tally(p => p.Gemm)}; conv picks: {Tally(p => p.Conv)}; wall time {seconds[0]:F2}–{seconds[^1]:F2} s (median {seconds[seconds.Length / 2]:F2}); " +
                          $"load average {Harness.MachineFacts.LoadAverage()}");
    }
}
