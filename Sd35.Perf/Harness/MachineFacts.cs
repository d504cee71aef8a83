using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Sd35.Perf.Harness;

/// <summary>Where and under what load a run was made: enough to tell whether two runs are comparable.</summary>
public sealed record MachineFacts
{
    public required string Cpu { get; init; }
    public required int LogicalCores { get; init; }
    public required int TorchThreads { get; init; }
    public required string Os { get; init; }
    public required string Runtime { get; init; }
    /// <summary>The baseline GEMM's shape, and its rate in GFLOP/s measured just before each timed run (median of several).</summary>
    public required string GemmShape { get; init; }
    public required IReadOnlyList<double> GemmGflops { get; init; }
    /// <summary>The dispatch probe (<see cref="DispatchBaseline"/>) and its rate in hand-offs per second around each timed run; empty in older runs.</summary>
    public string DispatchShape { get; init; } = "";
    public IReadOnlyList<double> DispatchRates { get; init; } = [];
    /// <summary>
    /// Per timed run, this process's CPU time over the run's wall time (cores kept busy on average): how much of the
    /// machine the run got — below the core count when other work shared it (or the run waited). Empty in older runs.
    /// </summary>
    public IReadOnlyList<double> CpuBusy { get; init; } = [];
    /// <summary>Per timed run (probes included), the cores other processes kept busy on average (<see cref="OtherWork"/>); empty in older runs.</summary>
    public IReadOnlyList<double> OthersBusy { get; init; } = [];
    public required string LoadBefore { get; init; }
    public required string LoadAfter { get; init; }
    public required string GitCommit { get; init; }
    public string? GitBranch { get; init; }
    /// <summary>The CPU runtime settings (Sd35.Tensors.CpuRuntime) or "libtorch default".</summary>
    public string CpuRuntime { get; init; } = "libtorch default";

    /// <summary>Facts of this machine and this process now; the GEMM samples and load-after are added by the caller.</summary>
    public static MachineFacts Now(string gemmShape, IReadOnlyList<double> gemmGflops, string loadBefore, string cpuRuntime) => new()
    {
        Cpu = CpuModel(),
        LogicalCores = Environment.ProcessorCount,
        TorchThreads = TorchSharp.torch.get_num_threads(),
        Os = RuntimeInformation.OSDescription,
        Runtime = RuntimeInformation.FrameworkDescription,
        GemmShape = gemmShape,
        GemmGflops = gemmGflops,
        LoadBefore = loadBefore,
        LoadAfter = LoadAverage(),
        GitCommit = Git("rev-parse HEAD") ?? Environment.GetEnvironmentVariable("GITHUB_SHA") ?? "unknown",
        GitBranch = Git("rev-parse --abbrev-ref HEAD"),
        CpuRuntime = cpuRuntime,
    };

    public static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    static string CpuModel()
    {
        if (!File.Exists("/proc/cpuinfo")) return RuntimeInformation.ProcessArchitecture.ToString();
        var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
        return line is null ? RuntimeInformation.ProcessArchitecture.ToString() : line[(line.IndexOf(':') + 1)..].Trim();
    }

    /// <summary>Asks git in the repository the binary runs from; null when git is missing or this is not a clone.</summary>
    static string? Git(string arguments)
    {
        try
        {
            var start = new ProcessStartInfo("git", arguments)
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
                WorkingDirectory = RepoPaths.Root,
            };
            using var process = Process.Start(start);
            if (process is null) return null;
            var output = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit(5000);
            return process.ExitCode == 0 && output.Length > 0 ? output : null;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException or DirectoryNotFoundException)
        {
            return null;
        }
    }
}
