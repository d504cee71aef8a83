using System.CommandLine;
using Sd35.Errors;
using Sd35.Hosting;
using Sd35.Mesh;
using Spectre.Console;

namespace Sd35.Demo;

/// <summary>
/// The process around one demo run, and the only place that decides exit codes: 0 done; 2 bad input, one line that
/// names the option, file, JSON path, key or value; 1 internal error, a short message and the path of a log file
/// with the details; 130 interrupted (see <see cref="InterruptGuard"/>). No exception escapes.
/// </summary>
public static class DemoApp
{
    public const int Ok = 0, InternalError = 1, BadInput = 2;

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var commandLine = new DemoCommandLine();
        var parsed = commandLine.Parse(args);
        var invocation = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        if (parsed.Errors.Count > 0)
        {
            error.WriteLine($"error: {commandLine.FirstError(parsed)}");
            return BadInput;
        }
        if (parsed.Action is not null && parsed.Action != commandLine.Root.Action)
            return parsed.Invoke(invocation);     // --help, --version

        using var interrupts = new InterruptGuard(error);
        try
        {
            bool live = !Console.IsOutputRedirected && ReferenceEquals(output, Console.Out);
            var console = live ? AnsiConsole.Console : DemoRunner.PlainConsole(output);
            return new DemoRunner(console, live, interrupts, ProcessSetup.Program).Run(commandLine.Options(parsed));
        }
        catch (Exception e)
        {
            return Report(e, error);
        }
    }

    /// <summary>Maps an exception to its exit code and message; never throws.</summary>
    public static int Report(Exception e, TextWriter error)
    {
        try
        {
            switch (e)
            {
                case OperationCanceledException { Message: "interrupted" }:
                    error.WriteLine("interrupted");
                    return InterruptGuard.ExitCode;
                case InputException input:
                    error.WriteLine($"error: {UserFacing(input)}");
                    return BadInput;
                default:
                    var log = WriteLog(e);
                    var what = e is NonFiniteException ? e.Message : $"internal error: {MeshFailure.Describe(e)}";
                    error.WriteLine($"error: {FirstLine(what)}");
                    error.WriteLine(log is null ? "(the details could not be written to a log file)" : $"details: {log}");
                    return InternalError;
            }
        }
        catch
        {
            return InternalError;
        }
    }

    /// <summary>A request field is shown as the option that sets it: <c>max_sequence_length</c> → <c>--max-sequence-length</c>, <c>n</c> → <c>--images</c>.</summary>
    static string UserFacing(InputException e) =>
        e is RequestException request && e.Message.StartsWith(request.Field, StringComparison.Ordinal)
            ? $"--{(request.Field == "n" ? "images" : request.Field.Replace('_', '-'))}{e.Message[request.Field.Length..]}"
            : e.Message;

    static string FirstLine(string text) => text.Split('\n', 2)[0].TrimEnd();

    static string? WriteLog(Exception e)
    {
        try
        {
            var path = Path.Combine(Path.GetTempPath(), $"sd35-demo-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.log");
            File.WriteAllText(path, $"Sd35.Demo {Environment.CommandLine}\n{DateTime.UtcNow:O}\n\n{e}\n");
            return path;
        }
        catch (Exception) { return null; }
    }
}
