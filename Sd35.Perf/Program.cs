using BenchmarkDotNet.Running;
using Sd35.Perf;

// `dotnet run -c Release --project Sd35.Perf -- quick [--repeat N] [workload...]` times each workload in this
// process next to a GEMM baseline measured right before it (a smoke check that stays meaningful on a shared box);
// `-- model ...` runs the mesh cost model (see ModelCommand);
// `-- ops [N]` times the block's individual operations; any other arguments go to BenchmarkDotNet
// (e.g. `--filter *TransformerForward*`); `-- traffic [config...]` prints the bytes per denoising step per link
// at full SD3.5 Large size (StepTrafficReport); `-- step <config> [N]` times a denoising step's pattern in-process,
// or over MPI when started as `mpirun -np <devices> dotnet Sd35.Perf.dll step <config>` (MeshStepTiming).
// The CPU runtime settings (huge-page allocations, retained heap, oneMKL AVX-512 on AMD) apply to every mode;
// SD35_CPU_RUNTIME=default measures libtorch as it comes.
// `-- report --baseline A --current B` compares two result sets (perf-test JSON, BenchmarkDotNet full JSON).
// `-- trace-overhead [config...] [--rounds N]` times traced against untraced denoising steps (TraceOverhead).
if (args is ["report", ..])
    return Sd35.Perf.Report.ReportCommand.Run(args[1..], Console.Out, Console.Error);
// Bad input (an unknown option, a value that does not parse, a model folder or config at fault) ends with one line
// naming it and exit code 2, never a stack trace.
try
{
    return Run(args);
}
catch (Exception e) when (e is ArgumentException or FormatException or Sd35.Errors.Sd35Exception or IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

static int Run(string[] args)
{
    // An existing libtorch (SD35_LIBTORCH_DIR or -p:Sd35LibTorchDir) must be loaded before anything touches TorchSharp.
    Console.WriteLine(Sd35.Tensors.LibTorchRuntime.Select());
    if (Environment.GetEnvironmentVariable("SD35_CPU_RUNTIME") != "default" && args is ["quick" or "ops" or "parts" or "random-model", ..])
        Console.WriteLine(Sd35.Tensors.CpuRuntime.Configure());
    if (args is ["quick", ..])
    {
        TorchSharp.torch.set_num_threads(Environment.ProcessorCount);
        QuickReport.Run(args[1..]);
        return 0;
    }
    if (args is ["ops", ..])
    {
        TorchSharp.torch.set_num_threads(Environment.ProcessorCount);
        OpProfile.Run(args.Length > 1 ? Count(args[1], "ops' repeat count") : 5);
        return 0;
    }
    if (args is ["trace-overhead", ..])
    {
        return TraceOverhead.Run(args[1..]);
    }
    if (args is ["model", ..])
    {
        return Sd35.Perf.ModelCommand.Run(args[1..]);
    }
    if (args is ["random-model", ..])
    {
        TorchSharp.torch.set_num_threads(Environment.ProcessorCount);
        return RandomModelCommand.Run(args[1..]);
    }
    if (args is ["load-speed", ..])
        return LoadSpeedCommand.Run(args[1..]);
    if (args is ["mesh-memory", ..])
        return MeshMemoryCommand.Run(args[1..]);
    if (args is ["make-model", ..])
        return MakeModelCommand.Run(args[1..]);
    if (args is ["parts", ..])
    {
        TorchSharp.torch.set_num_threads(Environment.ProcessorCount);
        BlockProfile.Run(args.Length > 1 ? args[1] : "block_sd35_large", args.Length > 2 ? Count(args[2], "parts' repeat count") : 3);
        return 0;
    }
    if (args is ["step", var stepConfig, ..])
    {
        MeshStepTiming.Run(stepConfig, args.Length > 2 ? Count(args[2], "step's repeat count") : 5);
        return 0;
    }
    if (args is ["traffic", ..])
    {
        StepTrafficReport.Run(args.Length > 1 ? args[1..] : ["t3k_cfg2_sp2_tp2", "tg_cfg2_sp4_tp4"]);
        return 0;
    }
    BenchmarkSwitcher.FromAssembly(typeof(TransformerForwardBenchmark).Assembly).Run(args);
    return 0;
}

static int Count(string text, string what) =>
    int.TryParse(text, out int n) && n > 0 ? n : throw new ArgumentException($"the {what} must be a positive whole number; got '{text}'");
