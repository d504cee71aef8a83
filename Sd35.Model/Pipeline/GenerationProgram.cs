using System.Diagnostics;
using Sd35.Layers;
using Sd35.Mesh;
using Sd35.Models.Transformer;
using static TorchSharp.torch;
using Sd35.Profiling;
using Sd35.Tensors;

namespace Sd35.Pipeline;

/// <summary>
/// What a generation reports and to whom: the timings, the observer (pipeline-wide and the generation's own, as one),
/// how many steps run, and with <paramref name="OnDeviceStep"/> every device's latents after each step.
/// </summary>
sealed record GenerationReports(StageTimings Timings, IGenerationObserver Observer, int StepsRun, Action<DeviceId, int, Tensor>? OnDeviceStep = null)
{
    /// <summary>
    /// One device's step callback: every device hands its own latents to <see cref="OnDeviceStep"/> (so a test can
    /// compare each device's copy, not only the lead's); the lead also records the timings and tells the observer.
    /// </summary>
    public Action<int, Tensor, double>? StepDoneOn(DeviceId device, bool lead)
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
        using var end = new DenoisingStepEnd(step, StepsRun, seconds, latents);
        ((IGenerationObserver)Timings).StepEnded(end);
        Observer.StepEnded(end);
    }

    /// <summary>The lead's stage boundaries; other devices report none.</summary>
    public void Started(GenerationStage stage, bool lead)
    {
        if (lead) Observer.StageStarted(stage);
    }

    public void Ended(GenerationStage stage, bool lead)
    {
        // A stage's temporaries (activations, weights expanded per layer) are freed by now, but with freed memory retained
        // (CpuRuntime) the next stage's differently sized tensors fill those holes only in part, so a resident server grew
        // request by request: the full-size Q8_0 server peaked at 15.3 GiB in its first request and 16.8 GiB in its second.
        // Handing the free pages back at each boundary keeps every request at the first one's peak, for a few page faults.
        CpuRuntime.ReleaseFreeMemory();
        if (lead) Observer.StageEnded(stage);
    }
}

/// <summary>
/// What one device runs for a generation (encode → denoise → decode), the same program on every device. Only the lead
/// device reports steps and stage boundaries (the VAE's first device reports the decoding times); every device hands
/// its latents after each step to <c>OnDeviceStep</c> when set. With a cancellable <paramref name="cancellation"/>,
/// every device asks the lead after each step whether to stop, so all stop at the same step boundary.
/// </summary>
/// <param name="models">releases each stage's models before the next loads its own, or keeps them for the next generation</param>
/// <param name="noise">the random draws; every device opens its own sequence (drawing from the request's seed gives every
/// device, and every process of a multi-process run, the same tensors)</param>
/// <param name="scheduler">set up for the steps that run (image to image starts part-way, see <see cref="FlowMatchEulerScheduler.StartAt"/>)</param>
sealed class GenerationProgram(PipelineComponents components, PipelinePrecision precision, ParallelConfig config, GenerationRequest request,
    NoiseSource noise, FlowMatchEulerScheduler scheduler, GenerationReports reports, Sd35.Mesh.Tracing.StepTrace? trace = null,
    PipelineModels? models = null, CancellationToken cancellation = default)
{
    readonly PipelineModels _models = models ?? PipelineModels.Staged;
    /// <summary>The dtype of the latents, the prompt embeddings and the draws: the transformer's compute dtype.</summary>
    readonly ScalarType _dtype = precision.Compute;

    /// <summary>The lead device: always among the text encoders; its result is the generation's result.</summary>
    public static readonly DeviceId Lead = 0;

    /// <summary>Returns the images in [0, 1] ([n, 3, H, W], float32) on the CPU.</summary>
    public Tensor Run(MeshRank launched)
    {
        var rank = launched.Place(config);
        bool lead = rank.Id == Lead;
        // The world group first, by every device at the same point: under MPI, making a group is collective over its members.
        _ = rank.World;
        Tensor latents;
        bool inpainting;
        reports.Started(GenerationStage.TextEncoding, lead);
        using (var prompt = Encode(rank, lead))
        {
            reports.Ended(GenerationStage.TextEncoding, lead);
            using var start = Start(rank, lead);
            inpainting = start.Inpainting;
            reports.Started(GenerationStage.Denoising, lead);
            latents = Denoise(rank, prompt, start, lead);
        }
        Tensor image;
        using (latents)
        {
            reports.Ended(GenerationStage.Denoising, lead);
            reports.Started(GenerationStage.VaeDecoding, lead);
            image = Decode(rank, latents, addShift: !inpainting);
        }
        reports.Ended(GenerationStage.VaeDecoding, lead);
        return image;
    }

    EncodedPrompt Encode(MeshRank rank, bool lead)
    {
        using var section = Instrumentation.InSection(GenerationStage.TextEncoding.Section());
        var stage = rank.ForStage(MeshGroups.TextEncoders);
        var encoded = stage is null ? null
            : PipelineStages.Encode(components, _dtype, request, stage, lead ? reports.Timings : null, _models, reports.Observer,
                precision.StorageOrNull);
        var everyone = rank.World;
        int root = rank.RankOf(MeshGroups.World, Lead);
        if (everyone.Size == 1) return encoded!;
        // Every device denoises with the lead's prompt, the encoders' other devices too, so all run on the same bits.
        using (encoded)
        {
            PromptEmbeddings Share(PromptEmbeddings? side) => new(
                everyone.BroadcastFromRoot(side?.PromptEmbeds, root, rank.Device),
                everyone.BroadcastFromRoot(side?.PooledPromptEmbeds, root, rank.Device));
            return new EncodedPrompt(Share(encoded?.Positive), request.UsesClassifierFreeGuidance ? Share(encoded?.Negative) : null);
        }
    }

    /// <summary>
    /// The draws in diffusers' order — for an image, the posterior's eps (drawn on every device, so every sequence stays
    /// aligned, though only the VAE's devices use it), then the pipeline's noise — and the image's latents, encoded
    /// where the VAE runs (tensor parallel as the decoder) and sent from the first of those devices to all.
    /// </summary>
    LatentStart Start(MeshRank rank, bool lead)
    {
        var device = rank.Device;
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
        reports.Started(GenerationStage.ImageEncoding, lead);
        using (var eps = draws.Next([1, .. shape[1..]], _dtype, "vae"))
            imageLatents = EncodeImage(rank, eps);
        reports.Ended(GenerationStage.ImageEncoding, lead);
        using (imageLatents)
        using (var pipelineNoise = draws.Next(shape, _dtype, "pipeline"))
            return LatentStart.FromImage(request, imageLatents, pipelineNoise, scheduler, device);
    }

    Tensor EncodeImage(MeshRank rank, Tensor eps)
    {
        using var section = Instrumentation.InSection(GenerationStage.ImageEncoding.Section());
        var stage = rank.ForStage(MeshGroups.Vae);
        var (reporter, root) = VaeReporter(rank);
        Tensor? latents = null;
        if (stage is not null)
        {
            using var image = request.Image!.ToTensor();
            latents = PipelineStages.EncodeImage(components, precision.Vae, image, eps, stage, rank.Id == reporter ? reports.Timings : null, _models, reports.Observer, precision.StorageOrNull)
                .Then(l => l.to(_dtype));
        }
        var everyone = rank.World;
        if (everyone.Size == 1) return latents!;
        using (latents)
        using (var shared = everyone.BroadcastFromRoot(latents, root, rank.Device))
            return ShapeOnly.ToHost(shared);
    }

    /// <summary>The VAE's first device (it reports the VAE's times and its results go to all) and its rank in the world group.</summary>
    (DeviceId Reporter, int Root) VaeReporter(MeshRank rank)
    {
        var reporter = rank.Mesh.Ids.First(id => StagePlacement.Vae(rank.Mesh, config, id) is not null);
        return (reporter, rank.RankOf(MeshGroups.World, reporter));
    }

    Tensor Denoise(MeshRank rank, EncodedPrompt prompt, LatentStart start, bool lead)
    {
        var watch = Stopwatch.StartNew();
        using var lease = _models.Get(rank, "transformer", r => SD3Transformer2DModel.FromFolder(components.Transformer, r, _dtype, precision.StorageOrNull), reports.Observer);
        var transformer = lease.Model;
        if (lead) reports.Timings.LoadSeconds += watch.Elapsed.TotalSeconds;
        using var branch = new GuidanceBranch(prompt, rank);
        var latents = start.Initial.clone();
        var stepDone = StepStopAgreement.After(reports.StepDoneOn(rank.Id, lead), cancellation, rank.World, lead, rank.RankOf(MeshGroups.World, Lead));
        return DenoisingLoop.Run(transformer, branch, rank, latents, scheduler, request, stepDone, trace,
            start.Inpainting ? (step, next) => start.AfterStep(step, next, scheduler) : null);
    }

    Tensor Decode(MeshRank rank, Tensor latents, bool addShift)
    {
        using var section = Instrumentation.InSection(GenerationStage.VaeDecoding.Section());
        var stage = rank.ForStage(MeshGroups.Vae);
        var (reporter, root) = VaeReporter(rank);
        var everyone = rank.World;
        var (image, nonFinite) = stage is null ? (null, null)
            : PipelineStages.DecodeAndCount(components, precision.Vae, latents, stage, rank.Id == reporter ? reports.Timings : null, _models, reports.Observer, addShift, precision.StorageOrNull);
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
