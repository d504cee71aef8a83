using System.Diagnostics;
using FluentAssertions;

namespace Sd35.Perf.Tests;

/// <summary>Sd35.Perf's commands meet bad input with one line that names it and exit code 2, never a stack trace.</summary>
public sealed class PerfCommandLineTests
{
    [Theory]
    [InlineData("mesh-memory --model /nonexistent/sd35", "/nonexistent/sd35")]
    [InlineData("mesh-memory --model . --parallel nope_cfg", "'nope_cfg' is not a parallel-config id")]
    [InlineData("make-model --help", "unknown option '--help'")]
    [InlineData("ops many", "got 'many'")]
    public async Task Bad_input_is_one_error_line_and_exit_code_2(string arguments, string named)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Sd35.Perf.dll"));
        foreach (var a in arguments.Split(' ')) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = await process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(limit.Token);

        process.ExitCode.Should().Be(2, stderr);
        stderr.Trim().Should().StartWith("error: ").And.Contain(named).And.NotContain("\n", "one line");
        (stderr + await stdout).Should().NotContain("Unhandled exception").And.NotContain("   at ", "no stack trace reaches the user");
    }
}
