using System.Diagnostics;
using Sd35.Mesh.Mpi;

namespace Sd35.Tests.TestSupport;

/// <summary>
/// Starts a program as an MPI job on this machine (<c>mpirun -np N dotnet X.dll ...</c>, loopback; MPICH's hydra
/// needs no flag to run more processes than cores, nor as root), waits with a time limit, and returns the exit
/// code and the output. The test-only programs (Sd35.MpiHost, the demo) sit next to the test assembly.
/// </summary>
public static class MpiJob
{
    /// <summary>Why MPI tests cannot run here, or null when they can: MPICH's library and an MPICH (hydra) mpirun.</summary>
    public static string? Unavailable { get; } = MpiRuntime.WhyJobsCannotStart();

    public sealed record Outcome(int ExitCode, string Output, TimeSpan Elapsed)
    {
        public override string ToString() => $"exit code {ExitCode} after {Elapsed.TotalSeconds:0.0} s; output:\n{Output}";
    }

    public static Outcome Run(int processes, string assembly, IEnumerable<string> args, TimeSpan limit, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("mpirun")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Every rank runs under the repository's rank wrapper, as the README's launch command does: it names a rank whose
        // process is killed by a signal.
        var wrapper = Path.Combine(RepoPaths.Root, "tools", "mpi", "sd35-rank");
        foreach (var a in new[] { "-np", processes.ToString(), "bash", wrapper, "dotnet", Path.Combine(AppContext.BaseDirectory, assembly) }.Concat(args))
            start.ArgumentList.Add(a);
        // The test host's own settings must not leak into the ranks (a parent MPI job's rank, for one).
        foreach (var name in new[] { "PMI_RANK", "PMI_SIZE", "PMI_FD", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE" })
            start.Environment.Remove(name);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;

        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        var gate = new object();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (gate) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (gate) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            lock (gate) return new Outcome(-1, $"(killed after the {limit.TotalSeconds} s limit)\n{output}", clock.Elapsed);
        }
        process.WaitForExit(); // drains the redirected streams
        lock (gate) return new Outcome(process.ExitCode, output.ToString(), clock.Elapsed);
    }
}

/// <summary>A fact that needs MPI: reported as skipped, with the reason, where MPICH is not installed.</summary>
public sealed class MpiFactAttribute : FactAttribute
{
    public MpiFactAttribute()
    {
        if (MpiJob.Unavailable is { } why) Skip = why;
    }
}
