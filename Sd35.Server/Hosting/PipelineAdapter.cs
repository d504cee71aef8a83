using Sd35.Errors;
using Sd35.Hosting;
using Sd35.Mesh;
using Sd35.Mesh.Mpi;
using Sd35.Pipeline;
using Sd35.Server.Api;
using TorchSharp;

namespace Sd35.Server.Hosting;

/// <summary>What a finished generation hands back: 8-bit pixels and the seconds of each section.</summary>
public sealed record GenerationOutcome(IReadOnlyList<RgbImage> Images, StageTimings Timings);

/// <summary>
/// The server's only coupling to the pipeline: builds it once from the options, turns a JSON body into a checked
/// <see cref="GenerationRequest"/>, and runs one generation that a token may stop at a step boundary.
/// Memory (<see cref="Sd35.Hosting.PipelineSettings.Residency"/>, <c>--models</c>): resident keeps every device's models from the first request until the
/// server stops; staged loads encoders → transformer → VAE per request, each released before the next loads, as the
/// demo does, so the server idles at a few hundred MB even for SD3.5 Large. Either way the component index (paths,
/// configs), the tokenizers and the backend stay loaded. Under <c>mpirun</c> every process builds one of these; the
/// lead relays each request to the others (<see cref="MpiJobRelay"/>), which run it in <see cref="ServeAsWorker"/>.
/// </summary>
public sealed class PipelineAdapter : IDisposable
{
    readonly ServerOptions _options;
    readonly PipelineComponents _components;
    readonly StableDiffusion3Pipeline _pipeline;
    readonly int _sizeMultiple;
    readonly MpiJobRelay? _relay;

    /// <summary>
    /// Builds the pipeline through the library's front door (<see cref="PipelineFactory"/>): the process set-up
    /// (<c>SD35_LIBTORCH_DIR</c>, the CPU runtime, NNPACK), the model's checks (a bad folder stops the start), and under
    /// <c>mpirun</c> one rank per process (a wrong process count fails here, on every process).
    /// </summary>
    public PipelineAdapter(ServerOptions options)
    {
        _options = options;
        _pipeline = PipelineFactory.Create(options.Pipeline, out var setup);
        Runtime = setup.Runtime;
        _components = _pipeline.Components;
        var transformer = _components.TransformerConfig;
        int vaeScale = _components.VaeConfig.ScaleFactor;
        _sizeMultiple = vaeScale * transformer.PatchSize;
        DefaultSize = transformer.SampleSize * vaeScale;
        TransformerLayers = transformer.NumLayers;
        Components = ComponentSummary.Of(_components, _pipeline.Precision);
        _relay = MpiRuntime.IsLaunched ? new MpiJobRelay() : null;
    }

    /// <summary>Tells <paramref name="observer"/> about every generation of this process until disposed (the metrics' model load times).</summary>
    public IDisposable Observe(IGenerationObserver observer) => _pipeline.Observe(observer);

    /// <summary>What the process set-up did: the libtorch in use (and the CPU runtime's switches), for the start-up log.</summary>
    public string Runtime { get; }

    ParallelConfig Parallel => _options.Pipeline.Parallel;

    /// <summary>The named mesh config the server runs on, or null for one device.</summary>
    public string? MeshId => Parallel == PipelineOptions.OneDevice ? null : Parallel.Id ?? Parallel.ToString();

    /// <summary>Bytes of the models this process keeps loaded, per component; empty with <c>--models staged</c>.</summary>
    public IReadOnlyDictionary<string, long> ResidentModelBytes() => _pipeline.ResidentModelBytes();

    /// <summary>The MPI job's process count, or null when every device of the run lives in this process.</summary>
    public int? MpiProcesses => _relay is null ? null : MpiRuntime.WorldSize;

    public string Memory => _options.Pipeline.Residency == ModelResidency.Resident
        ? "resident: every device's models (text encoders, transformer, VAE) load with the first request and stay loaded until the server stops; tokenizers and configs too"
        : "staged: each request loads encoders → transformer → VAE in turn and releases each before the next; tokenizers and configs stay loaded";

    public int DefaultSize { get; }
    public int SizeMultiple => _sizeMultiple;
    public int TransformerLayers { get; }
    public string ModelDescription => _options.Pipeline.Source == ModelSource.BuiltIn ? BuiltInComponents.Description : _components.Description;
    public string Device
    {
        get
        {
            var kind = _options.Pipeline.Device.ToString().ToLowerInvariant();
            if (MeshId is null) return $"{kind} (one device)";
            var mesh = $"mesh {MeshId} ({Parallel.Mesh})";
            return MpiProcesses is int processes ? $"{mesh} over MPI, {processes} processes (one per device) on {kind}" : $"simulated {mesh} on {kind}";
        }
    }
    public torch.ScalarType DType => _pipeline.Precision.Compute;

    /// <summary>The compute dtypes and weight storage, with the CPU measurement that chose them (<see cref="StableDiffusion3Pipeline.Precision"/>).</summary>
    public PipelinePrecision Precision => _pipeline.Precision;

    /// <summary>Each component's source, format, stored bytes and quantization (headers read once, at start).</summary>
    public IReadOnlyList<ComponentSummary> Components { get; }

    /// <summary>SD3.5 Large's layers 7, 8, 9 where the model has them; the middle layer of a smaller model.</summary>
    public int[] DefaultSkipLayers => TransformerLayers > 9 ? [7, 8, 9] : [TransformerLayers / 2];

    /// <summary>
    /// Fills in defaults and checks the request with the library's own rules (the demo's messages), plus the
    /// server's resource limits; every failure is a <see cref="RequestException"/> naming the JSON field.
    /// </summary>
    public GenerationRequest ToRequest(ImageRequestBody body)
    {
        var prompt = body.Prompt ?? throw new RequestException("prompt", "prompt is required");
        foreach (var (field, text) in new[] { ("prompt", prompt), ("negative_prompt", body.NegativePrompt), ("prompt_2", body.Prompt2),
            ("prompt_3", body.Prompt3), ("negative_prompt_2", body.NegativePrompt2), ("negative_prompt_3", body.NegativePrompt3) })
            CheckLength(field, text ?? "");
        int images = body.N ?? 1;
        var limits = _options.Pipeline.Limits;
        if (images < 1 || images > limits.MaxImages) throw new RequestException("n", $"n must be in 1..{limits.MaxImages} on this server; got {images}");
        var request = new GenerationRequest
        {
            Prompt = prompt,
            NegativePrompt = body.NegativePrompt ?? "",
            Prompt2 = body.Prompt2,
            Prompt3 = body.Prompt3,
            NegativePrompt2 = body.NegativePrompt2,
            NegativePrompt3 = body.NegativePrompt3,
            NoT5 = body.NoT5 ?? false,
            NumImagesPerPrompt = images,
            Steps = body.Steps ?? _options.DefaultSteps,
            GuidanceScale = body.Guidance ?? 3.5,
            Seed = body.Seed ?? 0,
            Width = body.Width ?? DefaultSize,
            Height = body.Height ?? DefaultSize,
            MaxSequenceLength = _options.MaxSequenceLength,
            SkipLayerGuidance = SkipLayers(body.SkipLayerGuidance),
        };
        request = ImageEdits.Apply(request, ImageEdits.FromBase64(body.Image, "image"), ImageEdits.FromBase64(body.Mask, "mask"), body.Strength, body.Width, body.Height, limits.MaxImageSide);
        if (request.Steps > limits.MaxSteps) throw new RequestException("steps", $"steps must be at most {limits.MaxSteps} on this server; got {request.Steps}");
        if (request.Width > limits.MaxImageSide) throw new RequestException("width", $"width must be at most {limits.MaxImageSide} on this server; got {request.Width}");
        if (request.Height > limits.MaxImageSide) throw new RequestException("height", $"height must be at most {limits.MaxImageSide} on this server; got {request.Height}");
        StableDiffusion3Pipeline.Validate(_components, Parallel, request);
        return request;
    }

    void CheckLength(string field, string text)
    {
        if (text.Length > _options.MaxPromptLength)
            throw new RequestException(field, $"{field} is {text.Length} characters; this server accepts at most {_options.MaxPromptLength}");
    }

    SkipLayerGuidance? SkipLayers(SkipLayerGuidanceBody? body)
    {
        if (body is null) return null;
        var layers = body.Layers ?? DefaultSkipLayers;
        var defaults = Pipeline.SkipLayerGuidance.Sd35;
        return new SkipLayerGuidance(layers, body.Scale ?? defaults.Scale, body.Start ?? defaults.Start, body.Stop ?? defaults.Stop);
    }

    /// <summary>
    /// Runs one generation on the calling thread (under MPI, on every process: the request goes to the workers first).
    /// <paramref name="observer"/> sees its stages and steps; <paramref name="cancellation"/> stops the run at the next
    /// step boundary, agreed by every device (<see cref="GenerationCancelledException"/>). Every tensor this thread makes
    /// is registered in one dispose scope, so a stopped run releases its latents (and staged models) at once rather
    /// than at the garbage collector's leisure; resident models are kept apart from it.
    /// </summary>
    public GenerationOutcome Generate(GenerationRequest request, IGenerationObserver observer, CancellationToken cancellation)
    {
        _relay?.Announce(request);
        using var scope = torch.NewDisposeScope();
        using var result = _pipeline.Generate(request, observer, cancellation: cancellation);
        return new GenerationOutcome(ImageOutput.FromUnitRange(result.Image), result.Timings);
    }

    /// <summary>
    /// A worker process of an MPI server: runs every request the lead relays, with the lead, until the lead says
    /// stop. The lead decides cancellation; a cancelled run ends here as on the lead, at the same step.
    /// </summary>
    public void ServeAsWorker()
    {
        var relay = _relay ?? throw new InvalidOperationException("not an MPI job: there is no lead to serve");
        // Cancellable, so this process takes part in the lead's per-step stop decision; only the lead's token decides.
        using var lead = new CancellationTokenSource();
        while (relay.Next() is { } request)
        {
            try
            {
                using var scope = torch.NewDisposeScope();
                using var result = _pipeline.Generate(request, cancellation: lead.Token);
            }
            // Stopped by the lead's decision, refused by the same check on every process before any collective (the
            // lead checked the request already, so that one does not happen), or failed alike on every process (NaN
            // latents after a step): either way all are ready for the next.
            catch (Exception e) when (e is RequestException or IRaisedByEveryRank { ByEveryRank: true })
            {
            }
        }
    }

    /// <summary>Lead of an MPI server: tells the workers to exit (once; the queue calls it when it stops).</summary>
    public void StopWorkers()
    {
        if (_relay is { IsLead: true }) _relay.Stop();
    }

    /// <summary>Releases resident models; a lead whose queue never ran still lets its workers go.</summary>
    public void Dispose()
    {
        StopWorkers();
        _pipeline.Dispose();
    }
}
