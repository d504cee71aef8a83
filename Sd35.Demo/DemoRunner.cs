using Sd35.Diagnostics;
using Sd35.Mesh;
using Sd35.Pipeline;
using TorchSharp;

namespace Sd35.Demo;

/// <summary>Runs one generation for the command line: progress bar, PNG written only when complete, timing table.</summary>
public sealed class DemoRunner(TextWriter output, TextWriter progressOutput)
{
    public int Run(DemoOptions options)
    {
        if (options.Help)
        {
            output.WriteLine(DemoOptions.Usage);
            return 0;
        }
        output.WriteLine(Sd35.Tensors.LibTorchRuntime.Describe(DeviceBinding.For(options.Device)(0)));
        var components = DemoComponents.Resolve(options);
        if (options.Model is null)
            output.WriteLine("No --model given: using the built-in tiny reference components from fixtures/. Their weights are RANDOM, so the image is noise-like; pass --model <SD3.5 diffusers folder> for a real picture.");

        var transformer = components.TransformerConfig;
        int defaultSize = transformer.SampleSize * components.VaeConfig.ScaleFactor;
        var request = new GenerationRequest
        {
            Prompt = options.Prompt,
            NegativePrompt = options.NegativePrompt,
            Steps = options.Steps,
            GuidanceScale = options.Guidance,
            Seed = options.Seed,
            Width = options.Width ?? defaultSize,
            Height = options.Height ?? defaultSize,
            MaxSequenceLength = options.MaxSequenceLength,
        };
        var placement = new PipelineOptions
        {
            Parallel = options.Parallel is null ? PipelineOptions.OneDevice : ParallelConfig.Parse(options.Parallel),
            Device = options.Device,
        };
        var pipeline = new StableDiffusion3Pipeline(components, options.Bf16 ? torch.ScalarType.BFloat16 : torch.ScalarType.Float32, placement);
        output.WriteLine($"{components.Description}: {request.Width}×{request.Height}, {request.Steps} steps, guidance {request.GuidanceScale}, seed {request.Seed}" +
            (options.Parallel is null ? "" : $", on simulated mesh config {options.Parallel}") + (options.Device == ComputeDevice.Cpu ? "" : $", on {options.Device}"));

        var probe = new StageMemoryProbe(pipeline);
        var bar = new ProgressBar(progressOutput, request.Steps);
        probe.Start();
        using var result = pipeline.Generate(request, bar);
        bar.Finish();
        if (!result.IsLead) return 0; // under a multi-process launcher, only the lead's process writes the image
        ImageOutput.SavePng(ImageOutput.FromUnitRange(result.Image)[0], options.Out);
        output.WriteLine($"wrote {options.Out} ({request.Width}×{request.Height})");
        output.WriteLine(result.Timings.ToTable());
        output.WriteLine(probe.ToTable(result.Timings));
        if (options.StatsJson is not null) probe.WriteJson(options.StatsJson, result.Timings);
        return 0;
    }
}

/// <summary>A one-line text progress bar over the denoising steps.</summary>
sealed class ProgressBar(TextWriter writer, int total) : IProgress<int>
{
    const int Width = 30;

    public void Report(int done)
    {
        int filled = total == 0 ? Width : done * Width / total;
        writer.Write($"\rdenoising [{new string('#', filled)}{new string('.', Width - filled)}] {done}/{total}");
        writer.Flush();
    }

    public void Finish() => writer.WriteLine();
}
