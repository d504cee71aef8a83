using System.CommandLine;
using System.Diagnostics;
using Sd35.Diagnostics;
using Sd35.Models.Transformer;
using Sd35.Numerics;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>
/// <c>transformer-step-speed --model DIR [--compute bf16|fp32|auto] [--storage bf16|as-computed] [--quantize TYPE] [--size 1024]</c>:
/// loads the transformer of a diffusers SD3.5 folder with its weights stored as asked and times one guided denoising
/// step at full size: one transformer forward on batch 2 (the conditional and the unconditional half), as the pipeline
/// runs it, on random latents and prompt embeddings (values do not change the time). <c>--compute auto</c> is the dtype
/// this CPU's probe picks (<see cref="ComputeDTypeProbe"/>); <c>--storage as-computed</c> holds the weights in the
/// compute dtype (the old <c>--bf16</c>: bf16 weights computing in bf16). Reports the load, the step's seconds and
/// analytic GFLOP/s beside a same-process fp32 GEMM rate, and the whole process's peak resident memory.
/// </summary>
public static class TransformerStepCommand
{
    public static Command Command()
    {
        var model = PerfOptions.ModelFolder("A diffusers SD3.5 folder whose transformer/ to load.");
        var compute = new Option<string>("--compute") { Description = "The compute dtype: bf16, fp32, or auto (this CPU's probe picks).", DefaultValueFactory = _ => "auto", HelpName = "bf16|fp32|auto" };
        compute.AcceptOnlyFromAmong("bf16", "fp32", "auto");
        var storage = new Option<string>("--storage") { Description = "How the linear weights are held: bf16, or as-computed (in the compute dtype).", DefaultValueFactory = _ => "bf16", HelpName = "bf16|as-computed" };
        storage.AcceptOnlyFromAmong("bf16", "as-computed");
        var quantize = new Option<GgmlType?>("--quantize") { Description = "Quantize the linear weights at load (q8_0, q5_1, q5_0, q4_1, q4_0).", HelpName = "type" };
        var size = PerfOptions.PositiveCount("--size", "Image width and height in pixels", 1024, "px");
        var promptTokens = PerfOptions.PositiveCount("--prompt-tokens", "Prompt tokens (77 CLIP + 256 T5)", 333);
        var blocks = new Option<int?>("--blocks") { Description = "Run only the first N joint blocks (the others are skipped, as skip-layer guidance does) and extrapolate the step: for a slow or busy machine.", HelpName = "n" };
        var command = new Command("transformer-step-speed", "Loads a model folder's transformer and times one guided denoising step (batch 2) at full size.")
        {
            model, compute, storage, quantize, size, promptTokens, blocks,
        };
        command.SetAction(r =>
        {
            PerfProcess.ForComputeTiming();
            Run(r.GetValue(model)!, r.GetValue(compute)!, r.GetValue(storage)!, r.GetValue(quantize), r.GetValue(size), r.GetValue(promptTokens), r.GetValue(blocks));
        });
        return command;
    }

    static void Run(string model, string compute, string storageName, GgmlType? quantize, int size, int promptTokens, int? blocks)
    {
        var folder = new ModelFolder(Path.Combine(model, "transformer"));
        var config = folder.ReadConfig<SD3TransformerConfig>();
        if (size % (8 * config.PatchSize) != 0) throw new ArgumentException($"--size {size} is not a multiple of {8 * config.PatchSize}");
        int run = blocks ?? config.NumLayers;
        if (run < 1 || run > config.NumLayers) throw new ArgumentException($"--blocks {run} is not between 1 and the transformer's {config.NumLayers} blocks");
        var skipped = Enumerable.Range(run, config.NumLayers - run).ToArray();
        var probe = ComputeDTypeProbe.Cpu;
        var dtype = compute switch { "bf16" => ScalarType.BFloat16, "fp32" => ScalarType.Float32, _ => probe.Gemm };
        var storage = storageName == "as-computed" ? WeightStorage.AsComputed : new WeightStorage { WeightDType = ScalarType.BFloat16 };
        if (quantize is { } type) storage = storage with { Quantize = type };
        Console.WriteLine($"probe: {probe}");
        Console.WriteLine($"load average: {Harness.MachineFacts.LoadAverage()}; {Environment.ProcessorCount} threads; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        Console.WriteLine($"transformer of {model}: compute {ComputeDTypeProbe.Name(dtype)} ({compute}), {storage}; {size}², {promptTokens} prompt tokens, batch 2");

        var watch = Stopwatch.StartNew();
        using var transformer = SD3Transformer2DModel.FromFolder(folder, dtype: dtype, storage: storage == WeightStorage.AsComputed ? null : storage);
        Console.WriteLine($"loaded in {watch.Elapsed.TotalSeconds:F0} s; resident {ProcessMemory.ResidentBytes / Gib:F2} GiB");

        double gemm = GemmRate();
        using var scope = NewDisposeScope();
        manual_seed(0);
        long latentSize = size / 8;
        var latent = randn(2, config.InChannels, latentSize, latentSize).to(dtype);
        var prompt = randn(2, promptTokens, config.JointAttentionDim).to(dtype);
        var pooled = randn(2, config.PooledProjectionDim).to(dtype);
        var timestep = full([2], 500f).to(dtype);
        long imageTokens = latentSize * latentSize / (config.PatchSize * config.PatchSize);
        double flops = 2 * run * Sd35.Tools.Benchmarks.AnalyticCost.JointBlockFlops(config.InnerDim, imageTokens + promptTokens);
        watch.Restart();
        using (var output = transformer.Forward(latent, prompt, pooled, timestep, skipped)) { }
        double seconds = watch.Elapsed.TotalSeconds;
        if (run < config.NumLayers)
            Console.WriteLine($"{run} of {config.NumLayers} blocks: the whole step extrapolates to {seconds * config.NumLayers / run:F0} s (blocks only, linear in their count)");
        Console.WriteLine($"step (one forward, batch 2, {run} blocks): {seconds:F1} s, {flops / seconds / 1e9:F1} GFLOP/s of the blocks' {flops / 1e12:F1} TFLOP; "
            + $"fp32 GEMM beside it {gemm:F1} GFLOP/s ({flops / seconds / 1e9 / gemm:P0} of gemm); peak RSS {ProcessMemory.PeakResidentBytes / Gib:F2} GiB");
        Console.WriteLine($"load average: {Harness.MachineFacts.LoadAverage()}");
    }

    const double Gib = 1 << 30;

    /// <summary>The workload report's GEMM (fp32, 4096×2432·2432×2432), best of three, in GFLOP/s.</summary>
    static double GemmRate()
    {
        using var gemm = Workloads.Create("gemm");
        gemm.Run();
        double best = double.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            var watch = Stopwatch.StartNew();
            gemm.Run();
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        return gemm.Flops / best / 1e9;
    }
}
