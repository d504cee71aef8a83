using System.CommandLine;
using System.Text.Json.Nodes;
using Sd35.GpuCheck;
using Sd35.Tools.CommandLine;
using Sd35.Tensors;
using Sd35.Tools.Benchmarks;

// sd35-gpucheck check [--device cuda] [--fixtures DIR] [--json FILE]   goldens (fp32, bf16) and device-vs-CPU smoke
// sd35-gpucheck bench <options>                                        the full-size benchmark (Sd35.Perf's synthetic-model-speed)
// SD35_LIBTORCH_DIR names the libtorch to run on (tools/gpu/run.sh sets it to the host's torch/lib). The option
// helpers and the benchmark's command are shared with Sd35.Perf through Sd35.Tools.
var device = PerfOptions.Device("cuda");
var fixtures = new Option<string>("--fixtures") { Description = "The repository's fixtures folder.", DefaultValueFactory = _ => "fixtures", HelpName = "dir" };
var json = new Option<string?>("--json") { Description = "Also write the results as JSON.", HelpName = "file.json" };
var check = new Command("check", "The goldens on the device in fp32 and bf16, each also against the CPU: a smoke test of every op the models use.") { device, fixtures, json };
check.SetAction(r =>
{
    var target = RandomModelBenchmark.ParseDevice(r.GetValue(device)!);
    Console.WriteLine(LibTorchRuntime.Describe(target));
    var report = new JsonObject { ["runtime"] = LibTorchRuntime.Describe(target) };
    int failed = GoldenCheck.Run(r.GetValue(fixtures)!, target, report, Console.Out);
    if (r.GetValue(json) is { } path) RandomModelBenchmark.WriteJson(report, path);
    Console.WriteLine(failed == 0 ? "all golden checks passed" : $"{failed} golden check(s) FAILED");
    return failed == 0 ? 0 : 1;
});
// The benchmark on a GPU host: every core for the host side, libtorch's CPU runtime as it comes.
var bench = RandomModelCommand.Command("bench", prepare: () => TorchSharp.torch.set_num_threads(Environment.ProcessorCount));
var root = new RootCommand("sd35-gpucheck — what tools/gpu/run.sh runs on a GPU host") { check, bench };
return PerfProcess.Invoke(root, args, Console.Out, Console.Error, needsLibTorch: _ => true);
