using System.CommandLine;
using BenchmarkDotNet.Running;

namespace Sd35.Perf;

/// <summary>
/// <c>benchmarks [BenchmarkDotNet arguments…]</c>: this assembly's BenchmarkDotNet benchmarks (per component and per
/// config at CI scale, the transformer forward), every argument after the command passed to BenchmarkDotNet as it is
/// (<c>--filter '*TransformerForward*'</c>, <c>--list flat</c>, …), so its own options are not repeated here.
/// </summary>
public static class BenchmarksCommand
{
    public static Command Command()
    {
        var passed = new Argument<string[]>("benchmarkdotnet-arguments")
        {
            Description = "Passed to BenchmarkDotNet as they are (e.g. --filter '*ComponentBenchmarks*'; `benchmarks -- --help` shows BenchmarkDotNet's own).",
            Arity = ArgumentArity.ZeroOrMore,
            CaptureRemainingTokens = true,
        };
        var command = new Command("benchmarks", "Runs BenchmarkDotNet on this assembly's benchmarks; every argument after the command goes to BenchmarkDotNet.") { passed };
        // The CPU runtime settings are made in each benchmark's GlobalSetup: BenchmarkDotNet runs them in a process of its own.
        command.SetAction(r =>
        {
            var arguments = r.GetValue(passed)!;
            var summaries = BenchmarkSwitcher.FromAssembly(typeof(TransformerForwardBenchmark).Assembly).Run(arguments);
            // BenchmarkDotNet answers an unknown option or a filter that matches nothing with its own message and no run.
            return summaries.Any() || arguments.Any(a => a is "--list" or "--help" or "-h" or "--version" or "--info") ? 0 : PerfProcess.BadInput;
        });
        return command;
    }
}
