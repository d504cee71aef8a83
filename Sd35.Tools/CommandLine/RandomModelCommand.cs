using System.CommandLine;
using Sd35.Tools.Benchmarks;
using Sd35.Tools.Synthetic;
using TorchSharp;

namespace Sd35.Tools.CommandLine;

/// <summary>
/// <c>synthetic-model-speed [options]</c>: the full-size benchmark without a checkpoint (<see cref="RandomModelBenchmark"/>),
/// its typed options filling a <see cref="RandomModelBenchmarkOptions"/>. tools/gpu/Sd35.GpuCheck compiles this file
/// too and offers the same command as <c>bench</c>, so the two command lines cannot drift apart.
/// </summary>
public static class RandomModelCommand
{
    /// <param name="name">The command's name: <c>synthetic-model-speed</c> in Sd35.Perf, <c>bench</c> in the GPU check.</param>
    /// <param name="prepare">Process set-up before the run (libtorch, CPU runtime, threads).</param>
    public static Command Command(string name = "synthetic-model-speed", Action? prepare = null)
    {
        var defaults = new RandomModelBenchmarkOptions();
        var preset = new Option<string>("--preset") { Description = "The architecture.", DefaultValueFactory = _ => defaults.Preset, HelpName = "name" };
        preset.AcceptOnlyFromAmong([.. SyntheticModelPreset.Names]);
        var device = PerfOptions.Device(defaults.Device);
        var size = PerfOptions.PositiveCount("--size", "Image width and height in pixels", defaults.Size, "px");
        var steps = PerfOptions.PositiveCount("--steps", "Denoising steps (with classifier-free guidance, batch 2)", defaults.Steps);
        var guidance = new Option<double>("--guidance") { Description = "Guidance scale.", DefaultValueFactory = _ => defaults.Guidance, HelpName = "x" };
        var maxSequenceLength = PerfOptions.PositiveCount("--max-sequence-length", "T5 tokens", defaults.MaxSequenceLength);
        var fp32 = PerfOptions.Fp32();
        var seed = new Option<long>("--seed") { Description = "Seed of the random weights and latents.", HelpName = "n" };
        var json = new Option<string?>("--json") { Description = "Also write the sections as JSON.", HelpName = "file.json" };
        var command = new Command(name, "Times one full-size generation with random weights made on the device: no checkpoint needed.")
        {
            preset, device, size, steps, guidance, maxSequenceLength, fp32, seed, json,
        };
        command.SetAction(r =>
        {
            (prepare ?? PerfProcess.ForComputeTiming)();
            var options = new RandomModelBenchmarkOptions
            {
                Preset = r.GetValue(preset)!,
                Device = r.GetValue(device)!,
                Size = r.GetValue(size),
                Steps = r.GetValue(steps),
                Guidance = r.GetValue(guidance),
                MaxSequenceLength = r.GetValue(maxSequenceLength),
                DType = r.GetValue(fp32) ? torch.ScalarType.Float32 : torch.ScalarType.BFloat16,
                Seed = r.GetValue(seed),
                Json = r.GetValue(json),
            };
            RandomModelBenchmark.RunAndReport(options, Console.Out);
        });
        return command;
    }
}
