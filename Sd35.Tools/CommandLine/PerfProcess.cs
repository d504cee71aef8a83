using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;

namespace Sd35.Tools.CommandLine;

/// <summary>The process around a command: libtorch, the CPU runtime, and exit codes.</summary>
public static class PerfProcess
{
    public const int BadInput = 2;

    /// <summary>
    /// Parses and runs a command line. Bad input — an unknown option or argument, a value that does not parse, a model
    /// folder or config at fault — ends with one line naming it and exit code 2, never a stack trace. Help needs no
    /// libtorch; other commands load it first unless <paramref name="needsLibTorch"/> says otherwise.
    /// </summary>
    public static int Invoke(RootCommand root, IReadOnlyList<string> args, TextWriter output, TextWriter error, Func<ParseResult, bool> needsLibTorch)
    {
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            error.WriteLine($"error: {FirstError(parsed)}");
            return BadInput;
        }
        try
        {
            if (parsed.Action is not HelpAction && needsLibTorch(parsed)) SelectLibTorch();
            return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidDataException or NotSupportedException
                                       or Sd35.Errors.Sd35Exception or IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"error: {e.Message.Split('\n', 2)[0].TrimEnd()}");
            return BadInput;
        }
    }

    /// <summary>
    /// The parse error to show, on one line: a token that matched nothing first (System.CommandLine lists it after
    /// "Required command was not provided"), and the option's name where the message does not say it.
    /// </summary>
    public static string FirstError(ParseResult parsed)
    {
        var command = parsed.CommandResult.Command;
        if (parsed.UnmatchedTokens.Count > 0)
            return command is RootCommand
                ? $"'{parsed.UnmatchedTokens[0]}' is not a command (see --help)"
                : $"'{parsed.UnmatchedTokens[0]}' is not an option, argument or command of '{command.Name}' (see {command.Name} --help)";
        var first = parsed.Errors[0];
        var message = string.Join(' ', first.Message.Split(['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        var option = first.SymbolResult switch
        {
            OptionResult o => o.Option.Name,
            ArgumentResult { Parent: OptionResult o } => o.Option.Name,
            _ => null,
        };
        return option is null || message.Contains(option, StringComparison.Ordinal) ? message : $"{option}: {message}";
    }

    /// <summary>
    /// Loads libtorch (SD35_LIBTORCH_DIR or -p:Sd35LibTorchDir names an existing one) and says which; before anything
    /// touches TorchSharp.
    /// </summary>
    public static void SelectLibTorch() => Console.WriteLine(Sd35.Tensors.LibTorchRuntime.Select());

    /// <summary>
    /// For the commands that time compute on one device: the CPU runtime settings (unless SD35_CPU_RUNTIME=default)
    /// and every core for libtorch's intra-op threads.
    /// </summary>
    public static void ForComputeTiming()
    {
        if (Environment.GetEnvironmentVariable("SD35_CPU_RUNTIME") != "default")
            Console.WriteLine(Sd35.Tensors.CpuRuntime.Configure());
        TorchSharp.torch.set_num_threads(Environment.ProcessorCount);
    }
}
