using System.Diagnostics;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Tensors.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>The image in [0, 1] ([1, 3, H, W], float32) and how long each stage took.</summary>
public sealed record GenerationResult(Tensor Image, StageTimings Timings) : IDisposable
{
    public void Dispose() => Image.Dispose();
}

/// <summary>
/// Text to image with SD3 / SD3.5, as diffusers' <c>StableDiffusion3Pipeline</c>: encode the prompt (and the
/// negative prompt under guidance), draw the initial latents from the seed exactly as the reference does
/// (<c>torch.randn</c> on CPU with a seeded generator), run the flow-matching Euler loop with classifier-free and
/// optional skip-layer guidance, un-scale the latents and decode them.
/// The stages run one after another and each releases its models before the next loads its own:
/// encoders → transformer → VAE. That keeps real SD3.5 Large (≈16 GB of transformer in bf16) within 24 GB.
/// </summary>
/// The denoising loop runs on a backend: one device (<see cref="SingleDeviceDenoising"/>, the default) or a device
/// mesh (<see cref="MeshDenoising"/>).
public sealed class StableDiffusion3Pipeline(PipelineComponents components, ScalarType dtype = ScalarType.Float32, IDenoisingBackend? denoising = null)
{
    readonly IDenoisingBackend _denoising = denoising ?? SingleDeviceDenoising.Instance;

    /// <summary>Raised after each stage with its name, once its models are released (tests watch memory here).</summary>
    public event Action<string>? StageReleased;

    /// <summary>Called after each denoising step with the step index and the latents.</summary>
    public Action<int, Tensor>? OnStep { get; set; }

    /// <param name="initialLatents">start from these latents instead of drawing them from the seed (diffusers' <c>latents=</c>)</param>
    public GenerationResult Generate(GenerationRequest request, IProgress<int>? progress = null, Tensor? initialLatents = null)
    {
        var transformerConfig = components.TransformerConfig();
        int vaeScale = components.VaeScaleFactor();
        request.Validate(vaeScale * transformerConfig.PatchSize);
        var timings = new StageTimings();

        Tensor finalLatents;
        using (var encoded = Encode(request, timings))
        {
            StageReleased?.Invoke("encoding");
            var start = initialLatents?.to(float32, copy: true) ?? InitialLatents(request, transformerConfig.InChannels, vaeScale);
            finalLatents = Denoise(request, start, encoded, timings, progress);
        }
        Tensor image;
        using (finalLatents)
        {
            StageReleased?.Invoke("denoising");
            image = Decode(finalLatents, timings);
        }
        StageReleased?.Invoke("decoding");
        return new GenerationResult(image, timings);
    }

    EncodedPrompt Encode(GenerationRequest request, StageTimings timings)
    {
        var watch = Stopwatch.StartNew();
        var tokenizers = Sd3Tokenizers.From(components.Tokenizers());
        using var clipL = ClipTextModel.FromFolder(components.TextEncoder, dtype);
        using var clipG = ClipTextModel.FromFolder(components.TextEncoder2, dtype);
        using var t5 = components.TextEncoder3 is null ? null : T5EncoderModel.FromFolder(components.TextEncoder3, dtype);
        timings.LoadSeconds += watch.Elapsed.TotalSeconds;

        watch.Restart();
        var encoder = new Sd3PromptEncoder(clipL, clipG, t5, components.TransformerConfig().JointAttentionDim, tokenizers);
        var prompt = Sd3Prompt.Single(request.Prompt, request.NegativePrompt, request.Prompt2, request.Prompt3);
        var encoded = encoder.Encode(prompt, request.UsesClassifierFreeGuidance, request.MaxSequenceLength);
        timings.EncodingSeconds = watch.Elapsed.TotalSeconds;
        return encoded;
    }

    Tensor Denoise(GenerationRequest request, Tensor latents, EncodedPrompt encoded, StageTimings timings, IProgress<int>? progress)
    {
        using (latents)
        {
            var scheduler = new FlowMatchEulerScheduler(components.Scheduler);
            scheduler.SetTimesteps(request.Steps);
            var job = new DenoisingJob(components.Transformer, dtype, encoded, latents, scheduler, request);
            return _denoising.Run(job, new DenoisingObservers(timings, OnStep, progress));
        }
    }

    /// <summary>diffusers' <c>prepare_latents</c>: <c>randn(1, C, H/f, W/f)</c> in float32 on CPU from a generator seeded with the request's seed.</summary>
    public static Tensor InitialLatents(GenerationRequest request, int channels, int vaeScale)
    {
        using var generator = new Generator((ulong)request.Seed);
        return randn([1, channels, request.Height / vaeScale, request.Width / vaeScale], float32, generator: generator);
    }

    Tensor Decode(Tensor latents, StageTimings timings)
    {
        var watch = Stopwatch.StartNew();
        using var vae = AutoencoderKLDecoder.Load(new ModelFolder(components.Vae), dtype);
        timings.LoadSeconds += watch.Elapsed.TotalSeconds;
        watch.Restart();
        using var scope = NewDisposeScope();
        var image = ImageOutput.ToUnitRange(vae.Decode(latents)).to(float32);
        timings.DecodingSeconds = watch.Elapsed.TotalSeconds;
        return image.MoveToOuterDisposeScope();
    }
}
