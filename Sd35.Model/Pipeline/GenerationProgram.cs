using System.Diagnostics;
using Sd35.Layers;
using Sd35.Mesh;
using Sd35.Models.Transformer;
using static TorchSharp.torch;
using Sd35.Profiling;

namespace Sd35.Pipeline;

/// <summary>
/// Who watches a generation: timings, the latents after each step (the lead's, and with <paramref name="OnDeviceStep"/>
/// every device's), progress, and the stage boundaries.
/// </summary>
sealed record GenerationObservers(StageTimings Timings, Action<int, Tensor>? OnStep, IProgress<int>? Progress, Action<string>? StageReleased,
    Action<int, int, Tensor>? OnDeviceStep = null)
{
    /// <summary>
    /// One device's step callback: every device hands its own latents to <see cref="OnDeviceStep"/> (so a test can
    /// compare each device's copy, not only the lead's); the lead also records the timings, calls OnStep and reports progress.
    /// </summary>
    public Action<int, Tensor, double>? StepDoneOn(int device, bool lead)
    {
        if (OnDeviceStep is null) return lead ? StepDone : null;
        return (step, latents, seconds) =>
        {
            using (var host = ShapeOnly.ToHost(latents)) OnDeviceStep(device, step, host);
            if (lead) StepDone(step, latents, seconds);
        };
    }

    public void StepDone(int step, Tensor latents, double seconds)
    {
        Timings.AddStep(seconds);
        if (OnStep is not null)
        {
            using var host = ShapeOnly.ToHost(latents);
            OnStep(step, host);
        }
        Progress?.Report(step + 1);
    }
}

/// <summary>
/// One device's program for a whole generation — encode → denoise → decode — the same on every device of every
/// mesh (one device is the 1×1 mesh). The text encoders run tensor parallel on the devices
/// <see cref="EncoderPlacement"/> assigns and the prompt goes from the lead device to all; every device loads its
/// shards of the transformer and runs <see cref="DenoisingLoop"/>; the VAE decodes on its devices and the image goes
/// from the first of them to all, so the image is on every device — in particular on the lead, whose process is
/// the one that writes it. Only the lead device reports progress, steps and stage boundaries (the VAE's first
/// device reports the decoding times); every device reports its latents after each step to <c>OnDeviceStep</c> when set. Models come from <paramref name="models"/>, which releases each stage's before
/// the next loads its own, or keeps them for the next generation. With a cancellable <paramref name="cancellation"/>,
/// every device asks the lead after each step whether to stop, so all stop at the same step boundary.
/// </summary>
/// <param name="noise">the random draws; every device opens its own sequence (drawing from the request's seed gives every
/// device, and every process of a multi-process run, the same tensors)</param>
/// <param name="scheduler">set up for the steps that run (image to image starts part-way, see <see cref="FlowMatchEulerScheduler.StartAt"/>)</param>
sealed class GenerationProgram(PipelineComponents components, PipelinePrecision precision, ParallelConfig config, GenerationRequest request,
    NoiseSource noise, FlowMatchEulerScheduler scheduler, GenerationObservers observers, Sd35.Mesh.Tracing.StepTrace? trace = null,
    PipelineModels? models = null, CancellationToken cancellation = default)
{
    readonly PipelineModels _models = models ?? PipelineModels.Staged;
    /// <summary>The dtype of the latents, the prompt embeddings and the draws: the transformer's compute dtype.</summary>
    readonly ScalarType _dtype = precision.Compute;

    /// <summary>The lead device: always among the text encoders; its result is the generation's result.</summary>
    public const int Lead = 0;

    /// <summary>Returns the images in [0, 1] ([n, 3, H, W], float32) on the CPU.</summary>
    public Tensor Run(MeshRank rank)
    {
        bool lead = rank.Id == Lead;
        var everyone = rank.Group("pipeline", rank.Mesh.Ids);
        var placed = rank.Place(config);
        Tensor latents;
        bool inpainting;
        using (var prompt = Encode(rank, everyone, lead))
        {
            if (lead) observers.StageReleased?.Invoke("encoding");
            using var start = Start(rank, everyone, placed.Context.Device);
            if (lead && request.Image is not null) observers.StageReleased?.Invoke("image encoding");
            inpainting = start.Inpainting;
            latents = Denoise(placed, prompt, start, lead, everyone);
        }
        Tensor image;
        using (latents)
        {
            if (lead) observers.StageReleased?.Invoke("denoising");
            image = Decode(rank, everyone, latents, addShift: !inpainting);
        }
        if (lead) observers.StageReleased?.Invoke("decoding");
        return image;
    }

    EncodedPrompt Encode(MeshRank rank, IProcessGroup everyone, bool lead)
    {
        using var section = Instrumentation.InSection(PerfSections.TotalEncoding);
        var members = EncoderPlacement.TextEncoderGroup(rank.Mesh, config, rank.Id);
        var encoded = members is null ? null
            : PipelineStages.Encode(components, _dtype, request, rank.Group("stage_tp", members), rank.Device, lead ? observers.Timings : null, _models, rank.Id,
                precision.StorageOrNull);
        if (everyone.Size == 1) return encoded!;
        // Every device denoises with the lead's prompt, the encoders' other devices too, so all run on the same bits.
        using (encoded)
        {
            PromptEmbeddings Share(PromptEmbeddings? side) => new(
                everyone.BroadcastFromRoot(side?.PromptEmbeds, Lead, rank.Device),
                everyone.BroadcastFromRoot(side?.PooledPromptEmbeds, Lead, rank.Device));
            return new EncodedPrompt(Share(encoded?.Positive), request.UsesClassifierFreeGuidance ? Share(encoded?.Negative) : null);
        }
    }

    /// <summary>
    /// The draws in diffusers' order — for an image, the posterior's eps (drawn on every device, so every sequence stays
    /// aligned, though only the VAE's devices use it), then the pipeline's noise — and the image's latents, encoded
    /// where the VAE runs (tensor parallel as the decoder) and sent from the first of those devices to all.
    /// </summary>
    LatentStart Start(MeshRank rank, IProcessGroup everyone, Device device)
    {
        var vae = components.VaeConfig;
        // diffusers: text to image draws the transformer's in_channels; image to image and inpainting the VAE's
        // latent_channels (the encoded image's). SD3.5 has 16 of both.
        int channels = request.Image is null ? components.TransformerConfig.InChannels : vae.LatentChannels;
        long[] shape = [request.NumImagesPerPrompt, channels, request.Height / vae.ScaleFactor, request.Width / vae.ScaleFactor];
        using var draws = noise.Open();
        if (request.Image is null)
        {
            using var initial = draws.Next(shape, _dtype, "pipeline");
            return LatentStart.FromNoise(initial, device);
        }
        Tensor imageLatents;
        using (var eps = draws.Next([1, .. shape[1..]], _dtype, "vae"))
            imageLatents = EncodeImage(rank, everyone, eps);
        using (imageLatents)
        using (var pipelineNoise = draws.Next(shape, _dtype, "pipeline"))
            return LatentStart.FromImage(request, imageLatents, pipelineNoise, scheduler, device);
    }

    Tensor EncodeImage(MeshRank rank, IProcessGroup everyone, Tensor eps)
    {
        using var section = Instrumentation.InSection(PerfSections.Vae);
        var members = EncoderPlacement.VaeGroup(rank.Mesh, config, rank.Id);
        var (reporter, root) = VaeReporter(rank);
        Tensor? latents = null;
        if (members is not null)
        {
            using var image = request.Image!.ToTensor();
            latents = PipelineStages.EncodeImage(components, precision.Vae, image, eps, rank.Group("stage_tp", members), rank.Device,
                rank.Id == reporter ? observers.Timings : null, _models, rank.Id).Then(l => l.to(_dtype));
        }
        if (everyone.Size == 1) return latents!;
        using (latents)
        using (var shared = everyone.BroadcastFromRoot(latents, root, rank.Device))
            return ShapeOnly.ToHost(shared);
    }

    /// <summary>The VAE's first device (it reports the VAE's times and its results go to all) and its rank in the whole mesh.</summary>
    (int Reporter, int Root) VaeReporter(MeshRank rank)
    {
        var ids = rank.Mesh.Ids;
        int reporter = ids.First(id => EncoderPlacement.VaeGroup(rank.Mesh, config, id) is not null);
        return (reporter, ids.ToList().IndexOf(reporter));
    }

    Tensor Denoise(ParallelRank placed, EncodedPrompt prompt, LatentStart start, bool lead, IProcessGroup everyone)
    {
        var watch = Stopwatch.StartNew();
        using var lease = _models.Get(placed.Placement.DeviceId, "transformer", placed.Context, r => SD3Transformer2DModel.FromFolder(components.Transformer, r, _dtype, precision.StorageOrNull));
        var transformer = lease.Model;
        if (lead) observers.Timings.LoadSeconds += watch.Elapsed.TotalSeconds;
        using var branch = new GuidanceBranch(prompt, placed);
        var latents = start.Initial.clone();
        var stepDone = StepStopAgreement.After(observers.StepDoneOn(placed.Placement.DeviceId, lead), cancellation, everyone, lead, Lead);
        return DenoisingLoop.Run(transformer, branch, placed, latents, scheduler, request, stepDone, trace,
            start.Inpainting ? (step, next) => start.AfterStep(step, next, scheduler) : null);
    }

    Tensor Decode(MeshRank rank, IProcessGroup everyone, Tensor latents, bool addShift)
    {
        using var section = Instrumentation.InSection(PerfSections.Vae);
        var members = EncoderPlacement.VaeGroup(rank.Mesh, config, rank.Id);
        var (reporter, root) = VaeReporter(rank);
        var (image, nonFinite) = members is null ? (null, null)
            : PipelineStages.DecodeAndCount(components, precision.Vae, latents, rank.Group("stage_tp", members), rank.Device,
                rank.Id == reporter ? observers.Timings : null, _models, rank.Id, addShift);
        // Only the VAE's devices see the decoder's output: the first one's verdict goes to every device, so all fail alike.
        if (AgreedVerdict(nonFinite, everyone, root, rank.Device) is { } counts)
        {
            image?.Dispose();
            throw FiniteCheck.Error(counts, FiniteCheck.VaeDecoding, byEveryRank: true);
        }
        if (everyone.Size == 1) return image!;
        using (image)
        using (var shared = everyone.BroadcastFromRoot(image, root, rank.Device))
            return ShapeOnly.ToHost(shared);
    }

    static NonFiniteCounts? AgreedVerdict(NonFiniteCounts? mine, IProcessGroup everyone, int root, Device device)
    {
        if (everyone.Size == 1) return mine;
        return NonFiniteCounts.Decode(everyone.BroadcastValues(NonFiniteCounts.Encode(mine), root, ShapeOnly.MetadataDevice(device)));
    }
}
