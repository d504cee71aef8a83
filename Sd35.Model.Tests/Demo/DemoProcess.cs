using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Sd35.Tests.Demo;

/// <summary>Runs the built demo (Sd35.Demo.dll, copied beside the tests) as a child process, as a user would.</summary>
static class DemoProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed)
    {
        public override string ToString() => $"exit {ExitCode} after {Elapsed.TotalSeconds:F1} s\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
    }

    /// <param name="interruptible">start it with SIGINT at its default disposition: a test runner started in the
    /// background of a script (<c>cmd &amp;</c>) ignores SIGINT, every child inherits that, and .NET then leaves the
    /// signal ignored, so an interrupt test would wait forever (coreutils' <c>env --default-signal</c> resets it)</param>
    public static Process Start(IEnumerable<string> args, string workingDirectory, bool interruptible = false)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        bool viaEnv = interruptible && OperatingSystem.IsLinux() && File.Exists("/usr/bin/env");
        var info = new ProcessStartInfo(viaEnv ? "/usr/bin/env" : dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        if (viaEnv)
        {
            info.ArgumentList.Add("--default-signal=INT");
            info.ArgumentList.Add(dotnet);
        }
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Sd35.Demo.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        return Process.Start(info)!;
    }

    public static Result Run(IEnumerable<string> args, string workingDirectory, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        using var process = Start(args, workingDirectory);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"the demo did not finish within {timeout}: {string.Join(' ', args)}");
        }
        process.WaitForExit();
        return new Result(process.ExitCode, stdout.Result, stderr.Result, clock.Elapsed);
    }

    /// <summary>Sends SIGINT, as Ctrl+C in a terminal does.</summary>
    public static void Interrupt(Process process)
    {
        if (Kill(process.Id, 2) != 0) throw new InvalidOperationException($"kill(SIGINT) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);
}
