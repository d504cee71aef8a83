using System.CommandLine;
using Sd35.Perf.Report;

namespace Sd35.Perf;

/// <summary>
/// Sd35.Perf's commands on System.CommandLine, one subcommand each, named by what it reports or writes (kebab-case
/// nouns: <c>workload-speed</c>, <c>step-traffic</c>, <c>cost-model prediction</c>…); "model" alone always means
/// the diffusion model. <c>--help</c> works on every command. Exit codes: 0 done, 1 what a command reports as failed (a
/// regression, a verification), 2 bad input (<see cref="PerfProcess.Invoke"/>).
/// </summary>
public sealed class PerfCommandLine
{
    public RootCommand Root { get; } = new("Sd35.Perf — perf reports, profiles, the mesh cost model and benchmarks. " +
        "The CPU runtime settings apply to every timing command (SD35_CPU_RUNTIME=default measures libtorch as it comes).")
    {
        QuickReport.Command(),
        OpProfile.Command(),
        BlockProfile.Command(),
        MeshStepTiming.Command(),
        StepTrafficReport.Command(),
        TraceOverhead.Command(),
        LoadSpeedCommand.Command(),
        MeshMemoryCommand.Command(),
        MakeModelCommand.Command(),
        RandomModelCommand.Command(),
        TransformerStepCommand.Command(),
        ComputeDTypeProbeCommand.Command(),
        CostModelCommand.Command(),
        ReportCommand.Command(),
        BenchmarksCommand.Command(),
    };

    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error) =>
        // The report reads JSON only: its markdown stays the first thing it prints.
        PerfProcess.Invoke(new PerfCommandLine().Root, args, output, error, needsLibTorch: parsed => parsed.CommandResult.Command.Name != "report");
}
