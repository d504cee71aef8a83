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
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Sd35.MpiHost.dll"));
        start.ArgumentList.Add("nullref");
        start.Environment.Remove("UCX_HANDLE_ERRORS");   // the library's own default must hold, not this machine's setting
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = await process.StandardOutput.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(limit.Token);

        process.ExitCode.Should().Be(0, $"stdout: {stdout}\nstderr: {await stderr}");
        stdout.Should().Contain("caught NullReferenceException");
    }
}
