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
/// The stages run on a backend: one device (<see cref="SingleDevice"/>, the default) or a device mesh
/// (<see cref="MeshBackend"/>).
public sealed class StableDiffusion3Pipeline(PipelineComponents components, ScalarType dtype = ScalarType.Float32, IPipelineBackend? backend = null)
{
    readonly IPipelineBackend _backend = backend ?? SingleDevice.Instance;

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
        _backend.Validate(components, request);
        var timings = new StageTimings();

        Tensor finalLatents;
        using (var encoded = _backend.Encode(components, dtype, request, timings))
        {
            StageReleased?.Invoke("encoding");
            var start = initialLatents?.to(dtype, copy: true) ?? InitialLatents(request, transformerConfig.InChannels, vaeScale, dtype);
            finalLatents = Denoise(request, start, encoded, timings, progress);
        }
        Tensor image;
        using (finalLatents)
        {
            StageReleased?.Invoke("denoising");
            image = _backend.Decode(components, dtype, finalLatents, timings);
        }
        StageReleased?.Invoke("decoding");
        return new GenerationResult(image, timings);
    }

    Tensor Denoise(GenerationRequest request, Tensor latents, EncodedPrompt encoded, StageTimings timings, IProgress<int>? progress)
    {
        using (latents)
        {
            var scheduler = new FlowMatchEulerScheduler(components.Scheduler);
            scheduler.SetTimesteps(request.Steps);
            var job = new DenoisingJob(components.Transformer, dtype, encoded, latents, scheduler, request);
            return _backend.Denoise(job, new DenoisingObservers(timings, OnStep, progress));
        }
    }

    /// <summary>
    /// diffusers' <c>prepare_latents</c>: <c>randn(1, C, H/f, W/f)</c> on the CPU from a generator seeded with the
    /// request's seed, drawn in the pipeline's dtype as diffusers draws it (a bf16 draw is a different stream).
    /// </summary>
    public static Tensor InitialLatents(GenerationRequest request, int channels, int vaeScale, ScalarType dtype = ScalarType.Float32)
    {
        using var generator = new Generator((ulong)request.Seed);
        return randn([1, channels, request.Height / vaeScale, request.Width / vaeScale], dtype, generator: generator);
    }
}
