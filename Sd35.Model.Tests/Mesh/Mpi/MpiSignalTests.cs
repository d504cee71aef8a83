using System.Diagnostics;
using FluentAssertions;
using Sd35.Tests.TestSupport;

namespace Sd35.Tests.Mesh.Mpi;

/// <summary>
/// Loading MPICH must leave .NET's null-reference handling alone: UCX under Debian's MPICH installs SIGSEGV handlers
/// that abort the process, which once crashed a whole test host. Run in a child process, so a regression fails this
/// test instead of killing the run.
/// </summary>
public sealed class MpiSignalTests
{
    [MpiFact]
    public async Task A_null_dereference_stays_a_catchable_exception_after_MPICH_loads()
    {
        // The library's own default must hold, not this machine's setting.
        var (exitCode, stdout, stderr) = await NullDereferenceInChild(ucxHandleErrors: null);
        exitCode.Should().Be(0, $"stdout: {stdout}\nstderr: {stderr}");
        stdout.Should().Contain("caught NullReferenceException");
    }

    [MpiOnUcxFact]
    public async Task With_UCX_handling_errors_the_same_dereference_aborts_the_child()
    {
        // The positive control: the failure the test above guards against, provoked on purpose (UCX's backtrace handler,
        // which MpiNative turns off by default). If this passed, the test above would prove nothing.
        var (exitCode, stdout, stderr) = await NullDereferenceInChild(ucxHandleErrors: "bt");
        exitCode.Should().NotBe(0, $"UCX's SIGSEGV handler aborts the process; stdout: {stdout}\nstderr: {stderr}");
        stdout.Should().NotContain("caught NullReferenceException");
    }

    static async Task<(int ExitCode, string Stdout, string Stderr)> NullDereferenceInChild(string? ucxHandleErrors)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Sd35.MpiHost.dll"));
        start.ArgumentList.Add("nullref");
        start.Environment.Remove("UCX_HANDLE_ERRORS");
        if (ucxHandleErrors is not null) start.Environment["UCX_HANDLE_ERRORS"] = ucxHandleErrors;
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = await process.StandardOutput.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(limit.Token);
        return (process.ExitCode, stdout, await stderr);
    }
}

/// <summary>
/// A fact that needs MPICH built on UCX (Debian's is): elsewhere UCX's signal handlers are not there to provoke, and
/// the test is reported as skipped with that reason.
/// </summary>
public sealed class MpiOnUcxFactAttribute : FactAttribute
{
    public MpiOnUcxFactAttribute()
    {
        if (MpiJob.Unavailable is { } why) Skip = why;
        else if (MpichLibrary() is not { } library) Skip = "no MPICH library found in ldconfig's cache";
        else if (!LinksUcx(library)) Skip = $"{library} is not built on UCX, so there are no UCX signal handlers to provoke";
    }

    /// <summary>The MPICH library the dynamic linker would load (the names MpiNative tries, first found).</summary>
    static string? MpichLibrary()
    {
        var start = new ProcessStartInfo("ldconfig", "-p") { RedirectStandardOutput = true, UseShellExecute = false };
        try
        {
            using var process = Process.Start(start)!;
            var lines = process.StandardOutput.ReadToEnd().Split('\n');
            process.WaitForExit();
            foreach (var name in new[] { "libmpich.so.12", "libmpi.so.12" })
                if (lines.FirstOrDefault(l => l.TrimStart().StartsWith(name + " ")) is { } line) return line[(line.LastIndexOf("=> ") + 3)..].Trim();
        }
        catch (System.ComponentModel.Win32Exception) { }
        return null;
    }

    /// <summary>Whether the library names UCX's libucs among its dependencies (the ELF dynamic string table holds the name).</summary>
    static bool LinksUcx(string library) =>
        System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(library)).Contains("libucs.so", StringComparison.Ordinal);
}
