using Sd35.Mesh;
using Sd35.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// The images in [0, 1] ([n, 3, H, W], float32, on the CPU; n = the request's images per prompt) and how long each stage took. Under a multi-process
/// launcher every process gets the image; <see cref="IsLead"/> is true in exactly one of them (the process hosting
/// the lead device), the one that should write it.
/// </summary>
public sealed record GenerationResult(Tensor Image, StageTimings Timings, bool IsLead = true) : IDisposable
{
    public void Dispose() => Image.Dispose();
}

/// <summary>
/// The library's entry point: images from a <see cref="GenerationRequest"/>, as diffusers'
/// <c>StableDiffusion3Pipeline</c> (text to image, initial latents drawn from the seed as <c>torch.randn</c> on the CPU
/// draws them), <c>StableDiffusion3Img2ImgPipeline</c> with an image and <c>StableDiffusion3InpaintPipeline</c> with a
/// mask too (see <see cref="LatentStart"/>), on one device or any mesh. By default each stage releases its models before
/// the next loads its own, which keeps real SD3.5 Large (≈16 GB of transformer in bf16) within 24 GB; with
/// <see cref="ModelResidency.Resident"/> the models stay until the pipeline is disposed and generations take turns.
/// </summary>
public sealed class StableDiffusion3Pipeline : IDisposable
{
    readonly PipelineComponents _components;
    readonly PipelinePrecision _precision;
    readonly ParallelConfig _parallel;
    readonly IMeshLauncher _launcher;
    readonly PipelineModels _models;
    readonly object _generating = new();
    /// <summary>Resident pipelines only: the mesh session whose groups the kept models hold, open until the pipeline is disposed.</summary>
    IMeshSession? _session;

    /// <summary>The pipeline's step trace when it runs traced (<see cref="PipelineOptions.Trace"/>), else null.</summary>
    public Sd35.Mesh.Tracing.StepTrace? Trace { get; }

    /// <exception cref="Sd35.Errors.RequestException">the options ask for a device kind that is not available (field <c>device</c>)</exception>
    public StableDiffusion3Pipeline(PipelineComponents components, ScalarType dtype = ScalarType.Float32, PipelineOptions? options = null)
        : this(components, PipelinePrecision.Uniform(dtype), options)
    {
    }

    /// <param name="precision">compute dtypes and weight storage (<see cref="PipelinePrecision.Choose"/> measures the CPU)</param>
    /// <exception cref="Sd35.Errors.RequestException">the options ask for a device kind that is not available (field <c>device</c>)</exception>
    public StableDiffusion3Pipeline(PipelineComponents components, PipelinePrecision precision, PipelineOptions? options = null)
    {
        options ??= new PipelineOptions();
        _components = components;
        _precision = precision;
        _parallel = options.Parallel;
        _launcher = options.ResolveLauncher();
        Trace = options.Trace;
        _models = new PipelineModels(options.Residency);
    }

    public ModelResidency Residency => _models.Residency;

    /// <summary>The components this pipeline runs (their configs decide sizes and limits).</summary>
    public PipelineComponents Components => _components;

    /// <summary>The dtypes the models compute in and how they store their weights (front-ends report it).</summary>
    public PipelinePrecision Precision => _precision;

    /// <summary>Models kept by this process now: none when staged, and none once disposed.</summary>
    public int ResidentModelCount => _models.KeptCount;

    /// <summary>Bytes of the models kept by this process now, per component (<c>transformer</c>, <c>vae</c>, …); empty when staged.</summary>
    public IReadOnlyDictionary<string, long> ResidentModelBytes() => _models.KeptBytes();

    readonly object _observing = new();
    IGenerationObserver[] _observers = [];

    /// <summary>
    /// Tells <paramref name="observer"/> about every generation of this pipeline (model loads, stages, steps) until the
    /// result is disposed; a generation's own observer goes to <see cref="Generate"/>.
    /// </summary>
    public IDisposable Observe(IGenerationObserver observer)
    {
        lock (_observing) _observers = [.. _observers, observer];
        return new Unsubscribe(() => { lock (_observing) _observers = _observers.Where(o => o != observer).ToArray(); });
    }

    sealed class Unsubscribe(Action undo) : IDisposable
    {
        Action? _undo = undo;
        public void Dispose() => Interlocked.Exchange(ref _undo, null)?.Invoke();
    }

    /// <summary>
    /// Called on every device this process hosts after each denoising step, on that device's thread (devices call it
    /// concurrently), with the device id, the step index and that device's latents (a CPU copy): every device holds the
    /// whole latents after a step, so a test can check each copy, not only the lead's.
    /// </summary>
    public Action<DeviceId, int, Tensor>? OnDeviceStep { get; set; }

    /// <summary>Called once per device this process hosts, after the generation, with the device id and that device's copy of the image.</summary>
    public Action<DeviceId, Tensor>? OnDeviceImage { get; set; }

    /// <param name="observer">watches this generation: its stages, steps and model loads (see <see cref="IGenerationObserver"/>)</param>
    /// <param name="initialLatents">start from these latents instead of drawing them from the seed (diffusers' <c>latents=</c>;
    /// text to image only)</param>
    /// <param name="noise">where the random draws come from (default: the request's seed, as diffusers' seeded CPU
    /// generator); tests replay the reference's recorded draws</param>
    /// <param name="cancellation">when cancellable, every device asks the lead after each denoising step whether to stop
    /// (one small broadcast per step on a mesh) and all throw <see cref="GenerationCancelledException"/> at the same step;
    /// under a multi-process launcher every process must pass a cancellable token or none, and only the lead's decides</param>
    public GenerationResult Generate(GenerationRequest request, IGenerationObserver? observer = null, Tensor? initialLatents = null,
        CancellationToken cancellation = default, NoiseSource? noise = null)
    {
        if (initialLatents is not null)
        {
            if (noise is not null || request.Image is not null)
                throw new ArgumentException("initial latents replace the text-to-image noise draw; give them without an image or a noise source", nameof(initialLatents));
            noise = NoiseSource.GivenLatents(initialLatents);
        }
        noise ??= NoiseSource.Seeded(request.Seed);
        if (Residency == ModelResidency.Staged) return Run(request, observer, noise, cancellation);
        // Resident models (and the process groups they hold) serve one generation at a time.
        lock (_generating) return Run(request, observer, noise, cancellation);
    }

    GenerationResult Run(GenerationRequest request, IGenerationObserver? observer, NoiseSource noise, CancellationToken cancellation)
    {
        Validate(_components, _parallel, request);
        var timings = new StageTimings();
        var scheduler = Schedule(_components, request);
        var program = new GenerationProgram(_components, _precision, _parallel, request, noise, scheduler,
            new GenerationReports(timings, GenerationObserver.Combine([.. Volatile.Read(ref _observers), observer]), request.StepsRun, OnDeviceStep),
            Trace, _models, cancellation);
        // A staged generation's models live within its run, and so may its groups; resident models keep the session's.
        var images = (Residency == ModelResidency.Resident
            ? (_session ??= _launcher.Open(_parallel.Mesh)).Run(program.Run)
            : _launcher.Run(_parallel.Mesh, program.Run)).Local;
        if (OnDeviceImage is { } onImage)
            foreach (var (id, image) in images.OrderBy(i => i.Key)) onImage(id, image);

        // Every hosted device holds the image; keep the lead's (or, in a process without it, the first one's).
        bool isLead = images.ContainsKey(GenerationProgram.Lead);
        var keep = isLead ? GenerationProgram.Lead : images.Keys.Min();
        foreach (var (id, image) in images) if (id != keep) image.Dispose();
        return new GenerationResult(images[keep], timings, isLead);
    }

    /// <summary>
    /// The schedule the request runs: diffusers' <c>set_timesteps</c> for all its steps, then for an image the
    /// <c>get_timesteps</c> cut that strength makes (the first steps skipped).
    /// </summary>
    public static FlowMatchEulerScheduler Schedule(PipelineComponents components, GenerationRequest request)
    {
        var scheduler = new FlowMatchEulerScheduler(components.Scheduler);
        scheduler.SetTimesteps(request.Steps);
        if (request.Image is not null) scheduler.StartAt(FlowMatchEulerScheduler.StepsSkipped(request.Steps, request.StrengthOrDefault));
        return scheduler;
    }

    /// <summary>Releases the models kept between generations (after a running generation ends).</summary>
    public void Dispose()
    {
        lock (_generating)
        {
            _models.Dispose();
            _session?.Dispose();
        }
    }

    /// <summary>
    /// Throws, before any model is loaded, if the request is out of range for the model (size, steps, guidance, …)
    /// or cannot run on the parallel layout. <see cref="Preflight"/> runs the same check.
    /// </summary>
    public static void Validate(PipelineComponents components, ParallelConfig parallel, GenerationRequest request)
    {
        var transformerConfig = components.TransformerConfig;
        int vaeScale = components.VaeConfig.ScaleFactor;
        request.Validate(vaeScale * transformerConfig.PatchSize, transformerConfig.NumLayers, Preflight.MaxImageSize(transformerConfig, vaeScale));
        // diffusers ignores T5's prompts when there is no T5; a prompt that cannot take effect is refused instead.
        if (components.TextEncoder3 is null) request.RefuseT5Prompts("the model has no text_encoder_3");
        try { ValidateLayout(parallel, request, transformerConfig, vaeScale); }
        catch (ArgumentException e) { throw new Sd35.Errors.RequestException("parallel", e.Message); }
    }

    static void ValidateLayout(ParallelConfig parallel, GenerationRequest request, SD3TransformerConfig transformerConfig, int vaeScale)
    {
        int latentScale = vaeScale * transformerConfig.PatchSize;
        long tokens = (long)(request.Height / latentScale) * (request.Width / latentScale);
        parallel.ValidateFor(tokens, transformerConfig.NumAttentionHeads, transformerConfig.InnerDim);
        if (parallel.Cfg.Factor == 2 && !request.UsesClassifierFreeGuidance)
            throw new ArgumentException($"config {parallel.Id ?? parallel.ToString()} splits classifier-free guidance over two submeshes, but the request has guidance scale {request.GuidanceScale} (no guidance)");
    }

    /// <summary>
    /// diffusers' <c>prepare_latents</c> for text to image: <c>randn(n, C, H/f, W/f)</c> on the CPU from a generator seeded
    /// with the request's seed, drawn in the pipeline's dtype as diffusers draws it (a bf16 draw is a different stream).
    /// </summary>
    public static Tensor InitialLatents(GenerationRequest request, int channels, int vaeScale, ScalarType dtype = ScalarType.Float32)
    {
        using var draws = NoiseSource.Seeded(request.Seed).Open();
        return draws.Next([request.NumImagesPerPrompt, channels, request.Height / vaeScale, request.Width / vaeScale], dtype, "pipeline");
    }
}
