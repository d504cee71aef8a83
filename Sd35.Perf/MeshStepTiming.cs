using System.CommandLine;
using System.Diagnostics;
using Sd35.Mesh;
using Sd35.Mesh.Mpi;

namespace Sd35.Perf;

/// <summary>
/// One denoising step's collectives and compute (<see cref="MeshStep"/>) on a parallel config, timed per step and with
/// the bytes device 0 moved per collective and step: in-process (one thread per device) when started plainly, one
/// process per device over MPI when started by <c>mpirun -np N</c>. Comparing the two on one machine shows the MPI
/// backend's overhead (copies through the MPI library, process scheduling) at the same traffic.
/// Model: SD3.5 Large's structure (38 heads, qk-norm) at head width 16, 4 blocks, 32×32 latents (256 image + 333 prompt tokens).
/// </summary>
public static class MeshStepTiming
{
    /// <summary><c>step-speed &lt;config&gt; [--repeat N]</c>, also as <c>mpirun -np &lt;devices&gt; dotnet Sd35.Perf.dll step-speed &lt;config&gt;</c>.</summary>
    public static Command Command()
    {
        var config = new Argument<string>("config") { Description = "The parallel config id (t3k_cfg2_sp2_tp2, …)." };
        config.Validators.Add(r => PerfOptions.CheckConfigIds(r, r.Tokens));
        var repeat = PerfOptions.Repeat(5, "timed steps");
        var command = new Command("step-speed", "Times a denoising step's collectives and compute on a parallel config: in-process, or one process per device under mpirun.") { config, repeat };
        command.SetAction(r => Run(r.GetValue(config)!, r.GetValue(repeat)));
        return command;
    }

    public static void Run(string configId, int steps)
    {
        var config = ParallelConfig.Parse(configId);
        var model = MeshStep.Sd35LargeShaped(headDim: 16, layers: 4);
        bool mpi = MpiRuntime.IsLaunched;
        IMeshLauncher launcher = mpi
            ? new MpiLauncher(mpi: new MpiRunOptions { Config = config, Announce = null })
            : MeshLaunchers.InProcess();
        var run = launcher.Run(config.Mesh, rank =>
        {
            var placed = rank.Place(config);
            using var step = new MeshStep(model, placed, latentSize: 32, promptTokens: 333);
            step.Run(); // warm-up: first-touch allocations, communicator set-up
            var before = rank.TrafficByLabel().ToDictionary(p => p.Key, p => p.Value.ByOp);
            var times = new double[steps];
            for (int i = 0; i < steps; i++)
            {
                var watch = Stopwatch.StartNew();
                step.Run();
                times[i] = watch.Elapsed.TotalSeconds;
            }
            return (Times: times, Before: before, After: rank.TrafficByLabel().ToDictionary(p => p.Key, p => p.Value.ByOp));
        });
        if (!run.Local.TryGetValue(0, out var lead)) return; // under MPI, the device-0 process reports
        Console.WriteLine($"{configId} on {(mpi ? $"MPI ({config.DeviceCount} processes)" : $"the in-process backend ({config.DeviceCount} threads)")}, {Environment.ProcessorCount} cores: " +
                          $"step median {Harness.SampleStatistics.MedianOf(lead.Times) * 1000:0} ms (min {lead.Times.Min() * 1000:0}, max {lead.Times.Max() * 1000:0}) over {steps} steps");
        foreach (var (label, ops) in lead.After.OrderBy(p => p.Key))
            foreach (var (op, stats) in ops.OrderBy(p => p.Key))
            {
                var start = lead.Before.GetValueOrDefault(label)?.GetValueOrDefault(op) ?? default;
                Console.WriteLine($"  device 0 {label,-4} {op,-14} per step: {(stats.Count - start.Count) / steps,4} calls, " +
                                  $"sent {(stats.BytesSent - start.BytesSent) / steps / 1024.0,9:0.0} KiB, received {(stats.BytesReceived - start.BytesReceived) / steps / 1024.0,9:0.0} KiB");
            }
    }
}
