using System.Text.Json;
using System.Text.Json.Nodes;
using Sd35.GpuCheck;
using Sd35.Hosting;
using Sd35.Synthetic;
using Sd35.Tensors;

// sd35-gpucheck check --device cuda --fixtures DIR [--json FILE]   goldens (fp32, bf16) and device-vs-CPU smoke
// sd35-gpucheck bench <random-model options>                       the full-size benchmark (RandomModelBenchmark)
// SD35_LIBTORCH_DIR names the libtorch to run on (tools/gpu/run.sh sets it to the host's torch/lib); the set-up is the
// pipelines' own (Sd35.Hosting.ProcessSetup), the CPU runtime left as it is for the device-against-CPU comparisons.
try
{
    Console.WriteLine(ProcessSetup.HostAsIs.Apply());
    if (args is ["bench", ..])
    {
        TorchSharp.torch.set_num_threads(Environment.ProcessorCount);
        RandomModelBenchmark.RunAndReport(RandomModelBenchmarkOptions.Parse(args[1..]), Console.Out);
        return 0;
    }
    if (args is ["check", ..])
    {
        string device = "cuda", fixtures = "fixtures";
        string? json = null;
        for (int i = 1; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"option {args[i]} needs a value");
            switch (args[i])
            {
                case "--device": device = Value(); break;
                case "--fixtures": fixtures = Value(); break;
                case "--json": json = Value(); break;
                default: throw new ArgumentException($"unknown option '{args[i]}'");
            }
        }
        var target = RandomModelBenchmark.ParseDevice(device);
        Console.WriteLine(LibTorchRuntime.Describe(target));
        var report = new JsonObject { ["runtime"] = LibTorchRuntime.Describe(target) };
        int failed = GoldenCheck.Run(fixtures, target, report, Console.Out);
        if (json is not null) RandomModelBenchmark.WriteJson(report, json);
        Console.WriteLine(failed == 0 ? "all golden checks passed" : $"{failed} golden check(s) FAILED");
        return failed == 0 ? 0 : 1;
    }
    Console.Error.WriteLine("usage: sd35-gpucheck check [--device cuda|cpu] [--fixtures DIR] [--json FILE] | bench " + RandomModelBenchmarkOptions.Usage);
    return 2;
}
catch (Exception e) when (e is ArgumentException or NotSupportedException or IOException or InvalidDataException or Sd35.Errors.Sd35Exception)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
