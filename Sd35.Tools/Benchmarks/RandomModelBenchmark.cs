using Sd35.Profiling;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sd35.Diagnostics;
using Sd35.Mesh;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Pipeline;
using Sd35.Tensors;
using Sd35.Tensors.Checkpoints;
using Sd35.Tokenizers;
using Sd35.Tools.Synthetic;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tools.Benchmarks;

/// <summary>
/// What to run: a preset's architecture at an image size, steps with guidance, on a device, in a dtype. The command
/// lines that offer the benchmark (<c>Sd35.Perf synthetic-model-speed</c>, <c>sd35-gpucheck bench</c>) fill it from their
/// typed options.
/// </summary>
public sealed record RandomModelBenchmarkOptions
{
    public string Preset { get; init; } = "sd35-large";
    public int Size { get; init; } = 1024;
    public int Steps { get; init; } = 2;
    public double Guidance { get; init; } = 3.5;
    public int MaxSequenceLength { get; init; } = 256;
    public string Device { get; init; } = "cpu";
    public ScalarType DType { get; init; } = ScalarType.BFloat16;
    public long Seed { get; init; }
    /// <summary>Where to write the JSON, if anywhere.</summary>
    public string? Json { get; init; }
}

/// <summary>
/// SD3.5-shaped components with seeded random weights made directly on the target device (no checkpoint, no
/// host copy of the weights): CLIP-L and CLIP-G, T5, the transformer and the VAE decoder, then one image —
/// encode the prompt and the empty negative prompt, N Euler steps with classifier-free guidance (batch 2),
/// decode. Each section is timed on its own (device synchronised), the transformer against the analytic FLOP
/// count (<see cref="AnalyticCost"/>), with peak memory: the process's <c>VmHWM</c> on the CPU, the device's used
/// memory (driver view, includes the caching allocator's reserve) on CUDA. The JSON uses the perf harness's
/// section names: clip_encoding, t5_encoding, total_encoding, denoising_step_{j}, denoising, vae, total.
/// </summary>
public static class RandomModelBenchmark
{
    public static JsonObject Run(RandomModelBenchmarkOptions options, Action<string>? log = null)
    {
        log ??= _ => { };
        var device = ParseDevice(options.Device);
        var preset = SyntheticModelPreset.Named(options.Preset);
        var transformerConfig = ModelConfig.Parse<SD3TransformerConfig>(preset.Transformer.ToJsonString());
        var vaeConfig = ModelConfig.Parse<AutoencoderKLConfig>(preset.Vae.ToJsonString());
        int vaeScale = vaeConfig.ScaleFactor;
        if (options.Size % (vaeScale * transformerConfig.PatchSize) != 0)
            throw new ArgumentException($"size {options.Size} must be a multiple of {vaeScale * transformerConfig.PatchSize}");
        log(LibTorchRuntime.Describe(device));
        var sections = new JsonObject();
        var peak = new DevicePeak(device);
        var total = Stopwatch.StartNew();
        using var noGrad = no_grad();

        // Encoders: CLIP-L and CLIP-G, then T5, on the positive and the empty negative prompt (batch 2).
        var tokenizers = TokenizerSet.Default();
        string[] prompts = ["a photo of an astronaut riding a horse on the moon", ""];
        Tensor promptEmbeds, pooled;
        double buildSeconds = 0;
        using (var clipL = Build(() => new ClipTextModel(ModelConfig.Parse<ClipTextConfig>(preset.ClipL.ToJsonString()), MeshRank.Single(device), options.DType), options.Seed, "clip_l", ref buildSeconds))
        using (var clipG = Build(() => new ClipTextModel(ModelConfig.Parse<ClipTextConfig>(preset.ClipG.ToJsonString()), MeshRank.Single(device), options.DType), options.Seed, "clip_g", ref buildSeconds))
        {
            var clipOnly = new Sd3PromptEncoder(clipL, clipG, null, transformerConfig.JointAttentionDim);
            using var l = Ids(prompts, tokenizers.ClipL, Sd3PromptEncoder.ClipTokens, device);
            using var g = Ids(prompts, tokenizers.ClipG, Sd3PromptEncoder.ClipTokens, device);
            var watch = Stopwatch.StartNew();
            using var clip = clipOnly.EncodeIds(l, g, null);
            Synchronize(device);
            sections[PerfSections.ClipEncoding] = Section(watch.Elapsed.TotalSeconds, peak);
            promptEmbeds = clip.PromptEmbeds.narrow(1, 0, Sd3PromptEncoder.ClipTokens).clone();
            pooled = clip.PooledPromptEmbeds.clone();
        }
        using (var t5 = Build(() => new T5EncoderModel(ModelConfig.Parse<T5Config>(preset.T5.ToJsonString()), MeshRank.Single(device), options.DType), options.Seed, "t5", ref buildSeconds))
        {
            using var ids = Ids(prompts, tokenizers.T5, options.MaxSequenceLength, device);
            var watch = Stopwatch.StartNew();
            using var hidden = t5.forward(ids);
            Synchronize(device);
            sections[PerfSections.T5Encoding] = Section(watch.Elapsed.TotalSeconds, peak);
            using var clipPart = promptEmbeds;
            promptEmbeds = cat([clipPart, hidden.to(clipPart.dtype)], 1);
        }
        sections[PerfSections.TotalEncoding] = new JsonObject
        {
            ["seconds"] = sections[PerfSections.ClipEncoding]!["seconds"]!.GetValue<double>() + sections[PerfSections.T5Encoding]!["seconds"]!.GetValue<double>(),
        };

        // Denoising: batch 2 (uncond, cond) through the transformer, guidance, Euler step.
        long latentSize = options.Size / vaeScale;
        long imageTokens = latentSize / transformerConfig.PatchSize * (latentSize / transformerConfig.PatchSize);
        double stepFlops = AnalyticCost.TransformerForwardFlops(transformerConfig, imageTokens, promptEmbeds.shape[1], batch: 2);
        Tensor latents;
        using (var transformer = Build(() => new SD3Transformer2DModel(transformerConfig, MeshRank.Single(device), options.DType), options.Seed, "transformer", ref buildSeconds))
        {
            var scheduler = new FlowMatchEulerScheduler(FlowMatchEulerSchedulerConfig.Sd35);
            scheduler.SetTimesteps(options.Steps);
            using var generator = new Generator((ulong)options.Seed);
            latents = randn([1, transformerConfig.InChannels, latentSize, latentSize], options.DType, generator: generator).to(device);
            var stepSeconds = new List<double>();
            for (int j = 0; j < options.Steps; j++)
            {
                var watch = Stopwatch.StartNew();
                using var scope = NewDisposeScope();
                var input = cat([latents, latents], 0);
                var timestep = full([2], scheduler.Timesteps[j], float32, device);
                var velocity = transformer.Forward(input, promptEmbeds, pooled, timestep);
                var guided = Guidance.Classifier(velocity[0..1], velocity[1..2], options.Guidance);
                var next = scheduler.Step(guided, j, latents).MoveToOuterDisposeScope();
                latents.Dispose();
                latents = next;
                Synchronize(device);
                double seconds = watch.Elapsed.TotalSeconds;
                stepSeconds.Add(seconds);
                sections[PerfSections.DenoisingStep(j)] = Section(seconds, peak, stepFlops);
                log($"step {j}: {seconds:F3} s, {stepFlops / seconds / 1e12:F2} TFLOP/s");
            }
            sections[PerfSections.Denoising] = Section(stepSeconds.Sum(), peak, stepFlops * options.Steps);
        }
        promptEmbeds.Dispose();
        pooled.Dispose();

        using (latents)
        using (var vae = Build(() => new AutoencoderKLDecoder(vaeConfig, MeshRank.Single(device), options.DType), options.Seed, "vae", ref buildSeconds))
        {
            var watch = Stopwatch.StartNew();
            using var image = vae.Decode(latents);
            Synchronize(device);
            sections[PerfSections.Vae] = Section(watch.Elapsed.TotalSeconds, peak);
            if (!image.isfinite().all().cpu().item<bool>()) throw new InvalidOperationException("the decoded image has non-finite values");
        }
        double computeSeconds = new[] { PerfSections.TotalEncoding, PerfSections.Denoising, PerfSections.Vae }.Sum(s => sections[s]!["seconds"]!.GetValue<double>());
        sections[PerfSections.Total] = Section(computeSeconds, peak);
        sections[PerfSections.Total]!["wall_seconds_with_building"] = total.Elapsed.TotalSeconds;
        sections[PerfSections.Total]!["building_weights_seconds"] = buildSeconds;
        return new JsonObject
        {
            ["benchmark"] = "random_model",
            ["preset"] = options.Preset,
            ["device"] = device.ToString(),
            ["runtime"] = LibTorchRuntime.Describe(device),
            ["dtype"] = options.DType.ToString(),
            ["size"] = options.Size,
            ["steps"] = options.Steps,
            ["guidance"] = options.Guidance,
            ["prompt_tokens"] = Sd3PromptEncoder.ClipTokens + options.MaxSequenceLength,
            ["image_tokens"] = imageTokens,
            ["transformer_step_flops"] = stepFlops,
            ["image_flops_28_steps"] = stepFlops * 28,
            ["sections"] = sections,
        };
    }

    /// <summary>cpu, cuda or cuda:N; CUDA without a CUDA libtorch or a GPU is the pipeline's clear error (<see cref="DeviceBinding"/>).</summary>
    public static Device ParseDevice(string text) => text switch
    {
        "cpu" => CPU,
        "cuda" => DeviceBinding.For(ComputeDevice.Cuda)(0),
        _ when text.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(text[5..], out int index) => DeviceBinding.For(ComputeDevice.Cuda)(index),
        _ => throw new ArgumentException($"device '{text}' is not cpu, cuda or cuda:N"),
    };

    /// <summary>Builds a model on its device and fills it in place with the random recipe, from a generator on that device.</summary>
    static TModel Build<TModel>(Func<TModel> build, long seed, string name, ref double seconds) where TModel : nn.Module
    {
        var watch = Stopwatch.StartNew();
        var model = build();
        model.eval();
        foreach (var (parameterName, parameter) in model.named_parameters())
        {
            using var generator = RandomInit.ForTensor(seed, $"{name}/{parameterName}", parameter.device);
            using var values = RandomInit.Values(parameterName, parameter.shape, generator, parameter.device);
            parameter.copy_(values);
        }
        Synchronize(model.parameters().First().device);
        seconds += watch.Elapsed.TotalSeconds;
        return model;
    }

    static Tensor Ids(string[] prompts, IPromptTokenizer tokenizer, int length, Device device) =>
        tensor(prompts.SelectMany(p => tokenizer.Encode(p, length)).Select(i => (long)i).ToArray(), [prompts.Length, length]).to(device);

    static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }

    static JsonObject Section(double seconds, DevicePeak peak, double? flops = null)
    {
        var section = new JsonObject { ["seconds"] = seconds, ["peak_memory_bytes"] = peak.Read() };
        if (flops is { } f)
        {
            section["flops"] = f;
            section["tflops_per_second"] = f / seconds / 1e12;
        }
        return section;
    }

    /// <summary>Runs, prints the section table and the per-image estimate, writes the JSON if asked; for the command lines.</summary>
    public static JsonObject RunAndReport(RandomModelBenchmarkOptions options, TextWriter output)
    {
        var result = Run(options, output.WriteLine);
        var sections = result["sections"]!.AsObject();
        output.WriteLine($"{"section",-20} {"seconds",9} {"TFLOP/s",8} {"peak memory GiB",16}");
        foreach (var (name, section) in sections)
        {
            double seconds = section!["seconds"]?.GetValue<double>() ?? 0;
            string rate = section["tflops_per_second"] is { } t ? $"{t.GetValue<double>(),8:F2}" : $"{"",8}";
            string memory = section["peak_memory_bytes"] is { } m ? $"{m.GetValue<long>() / (double)(1L << 30),16:F2}" : "";
            output.WriteLine($"{name,-20} {seconds,9:F3} {rate} {memory}");
        }
        double step = sections[PerfSections.Denoising]!["seconds"]!.GetValue<double>() / options.Steps;
        double perImage = sections[PerfSections.TotalEncoding]!["seconds"]!.GetValue<double>() + 28 * step + sections[PerfSections.Vae]!["seconds"]!.GetValue<double>();
        result["seconds_per_step"] = step;
        result["seconds_per_image_28_steps"] = perImage;
        output.WriteLine($"one step (CFG, batch 2): {step:F3} s; one image with 28 steps ≈ {perImage:F2} s " +
            $"({result["image_flops_28_steps"]!.GetValue<double>() / 1e15:F3} PFLOP in the transformer: {result["image_flops_28_steps"]!.GetValue<double>() / (28 * step) / 1e12:F1} TFLOP/s)");
        if (options.Json is not null)
        {
            WriteJson(result, options.Json);
            output.WriteLine($"wrote {options.Json}");
        }
        return result;
    }

    public static void WriteJson(JsonObject result, string path) =>
        File.WriteAllText(path, result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    /// <summary>Peak memory so far: VmHWM on the CPU; on CUDA the device's used memory (total − free, driver view), highest seen.</summary>
    sealed class DevicePeak(Device device)
    {
        long _highest;

        public long Read()
        {
            long now = device.type == DeviceType.CUDA ? CudaUsedBytes() : ProcessMemory.PeakResidentBytes;
            _highest = Math.Max(_highest, now);
            return _highest;
        }

        static unsafe long CudaUsedBytes()
        {
            if (!NativeLibrary.TryLoad("libcuda.so.1", out var driver)) return 0;
            var getInfo = (delegate* unmanaged<nuint*, nuint*, int>)NativeLibrary.GetExport(driver, "cuMemGetInfo_v2");
            nuint free = 0, totalBytes = 0;
            return getInfo(&free, &totalBytes) == 0 ? (long)(totalBytes - free) : 0;
        }
    }
}
