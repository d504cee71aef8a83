using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Sd35.Mesh.Mpi;

namespace Sd35.Server.Tests;

/// <summary>
/// The real server as a process of its own on loopback, on a port the system picks (its "Now listening on" line gives
/// the address): alone (<c>dotnet Sd35.Server.dll …</c>, every device in-process) or as an MPI job
/// (<c>mpirun -np N tools/mpi/sd35-rank dotnet Sd35.Server.dll …</c>, as the README says). Both start the same way,
/// so they run with the same CPU runtime settings. Disposing kills whatever is left (a test that failed half-way).
/// </summary>
public sealed partial class ServerProcess : IAsyncDisposable
{
    readonly Process _mpirun;
    readonly StringBuilder _output = new();
    readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    ServerProcess(Process mpirun, string outputFolder)
    {
        _mpirun = mpirun;
        OutputFolder = outputFolder;
    }

    public HttpClient Client { get; private set; } = null!;
    public string OutputFolder { get; }

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <param name="mpiProcesses">null: one process, no MPI</param>
    public static async Task<ServerProcess> StartAsync(int? mpiProcesses, TimeSpan limit, params string[] args)
    {
        var folder = Directory.CreateTempSubdirectory("sd35-server-process-").FullName;
        var start = new ProcessStartInfo(mpiProcesses is null ? "dotnet" : "mpirun") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] launch = mpiProcesses is int n ? ["-np", n.ToString(), "bash", RankWrapper(), "dotnet"] : [];
        var server = Path.Combine(AppContext.BaseDirectory, "Sd35.Server.dll");
        foreach (var a in launch.Concat([server, "--urls", "http://127.0.0.1:0", "--output", folder, "--steps", "2", .. args]))
            start.ArgumentList.Add(a);
        // This test process's own MPI settings (were it a rank itself) must not leak into the job.
        foreach (var name in new[] { "PMI_RANK", "PMI_SIZE", "PMI_FD", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE" }) start.Environment.Remove(name);
        var job = new ServerProcess(Process.Start(start)!, folder);
        job._mpirun.OutputDataReceived += (_, e) => job.Read(e.Data);
        job._mpirun.ErrorDataReceived += (_, e) => job.Read(e.Data);
        job._mpirun.BeginOutputReadLine();
        job._mpirun.BeginErrorReadLine();
        var exited = job._mpirun.WaitForExitAsync();
        var first = await Task.WhenAny(job._listening.Task, exited, Task.Delay(limit));
        if (first != job._listening.Task)
        {
            await job.DisposeAsync();
            throw new InvalidOperationException($"the server did not start within {limit.TotalSeconds} s:\n{job.Output}");
        }
        job.Client = new HttpClient { BaseAddress = await job._listening.Task, Timeout = limit };
        return job;
    }

    void Read(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
        if (ListeningLine().Match(line) is { Success: true } m) _listening.TrySetResult(new Uri(m.Groups[1].Value));
    }

    // Plain or JSON logs (--log-format json): the address ends at a space or the JSON string's quote.
    [GeneratedRegex(@"Now listening on: (http://[^\s""]+)")]
    private static partial Regex ListeningLine();

    /// <summary>The pids of the job's rank processes, from the line the lead prints once its first run starts.</summary>
    public IReadOnlyList<int> RankPids() =>
        [.. Regex.Matches(Output, @"rank \d+: pid (\d+)").Select(m => int.Parse(m.Groups[1].Value))];

    /// <summary>Ctrl-C: SIGINT to the process started (mpirun passes it to every rank); its exit code, or null if it outlived <paramref name="limit"/>.</summary>
    public async Task<int?> InterruptAsync(TimeSpan limit)
    {
        // bash's own kill: a fresh machine may lack procps's /bin/kill, never bash (the rank wrapper needs it too).
        using (var kill = Process.Start("bash", ["-c", $"kill -INT {_mpirun.Id}"])) await kill.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await _mpirun.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        _mpirun.WaitForExit(); // drains the redirected streams
        return _mpirun.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        Client?.Dispose();
        if (!_mpirun.HasExited)
        {
            _mpirun.Kill(entireProcessTree: true);
            await _mpirun.WaitForExitAsync();
        }
        _mpirun.Dispose();
        Directory.Delete(OutputFolder, recursive: true);
    }

    static string RankWrapper()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var wrapper = Path.Combine(dir.FullName, "tools", "mpi", "sd35-rank");
            if (File.Exists(wrapper)) return wrapper;
        }
        throw new FileNotFoundException($"tools/mpi/sd35-rank was not found above {AppContext.BaseDirectory}");
    }
}

/// <summary>A fact that starts MPI jobs: reported as skipped, with the reason, where MPICH is not installed.</summary>
public sealed class MpiFactAttribute : FactAttribute
{
    public MpiFactAttribute()
    {
        if (MpiRuntime.WhyJobsCannotStart() is { } why) Skip = why;
    }
}
