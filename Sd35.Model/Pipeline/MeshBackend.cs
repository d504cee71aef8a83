using System.Diagnostics;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.Models.Transformer;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// The pipeline on a device mesh, written as one program per device (SPMD), as the reference system runs it.
/// Denoising: every device loads only its shards of the transformer; the unconditional branch runs on cfg
/// submesh 0 and the conditional on submesh 1 (with cfg = 1 one submesh runs both as a batch); inside a submesh
/// the image tokens are split over sp (ring attention) and the features over tp. Once per step the two branches
/// exchange their predictions over the cfg group (an AllGather between the devices at the same submesh
/// position), so every device computes the same guided velocity and the same Euler step: the next step's
/// latents are laid out again on both submeshes without a round trip through the host.
/// Encoding and decoding run tensor parallel on a cfg submesh (<see cref="EncoderPlacement"/>).
/// </summary>
public sealed class MeshBackend(ParallelConfig config, MeshRunOptions? options = null) : IPipelineBackend
{
    /// <summary>
    /// Real-size stages keep one submesh waiting while the other works (a skip-layer pass, a checkpoint read), so
    /// the pipeline's collectives wait far longer than the in-process default before declaring a hang.
    /// </summary>
    public static MeshRunOptions PipelineDefaults { get; } = new() { CollectiveTimeout = TimeSpan.FromMinutes(30) };

    readonly MeshRunOptions _options = options ?? PipelineDefaults;

    public ParallelConfig Config { get; } = config;

    public void Validate(PipelineComponents components, GenerationRequest request)
    {
        var transformerConfig = components.TransformerConfig();
        int latentScale = components.VaeScaleFactor() * transformerConfig.PatchSize;
        long tokens = (long)(request.Height / latentScale) * (request.Width / latentScale);
        Config.ValidateFor(tokens, transformerConfig.NumAttentionHeads, transformerConfig.InnerDim);
        if (Config.Cfg.Factor == 2 && !request.UsesClassifierFreeGuidance)
            throw new ArgumentException($"config {Name} splits classifier-free guidance over two submeshes, but the request has guidance scale {request.GuidanceScale} (no guidance)");
    }

    string Name => Config.Id ?? Config.ToString();

    public EncodedPrompt Encode(PipelineComponents components, ScalarType dtype, GenerationRequest request, StageTimings timings)
    {
        var results = RunOnGroups(EncoderPlacement.TextEncoderGroup, (rank, group, reporter) =>
            PipelineStages.Encode(components, dtype, request, group, rank.Device, reporter ? timings : null));
        return KeepFirst(results, e => e.Dispose());
    }

    public Tensor Decode(PipelineComponents components, ScalarType dtype, Tensor latents, StageTimings timings)
    {
        var results = RunOnGroups(EncoderPlacement.VaeGroup, (rank, group, reporter) =>
            PipelineStages.Decode(components, dtype, latents, group, rank.Device, reporter ? timings : null));
        return KeepFirst(results, t => t.Dispose());
    }

    public Tensor Denoise(DenoisingJob job, DenoisingObservers observers)
    {
        var transformerConfig = SD3TransformerConfig.FromFile(Path.Combine(job.TransformerFolder, "config.json"));
        var results = MeshRunner.Run(Config, (rank, placed) => RankProgram(job, placed, transformerConfig, observers, isReporter: rank.Id == 0), _options);
        return KeepFirst(results, t => t.Dispose());
    }

    /// <summary>Runs a stage on the devices a placement assigns (each with its tp group); the first of them reports timings.</summary>
    T?[] RunOnGroups<T>(Func<DeviceMesh, ParallelConfig, int, IReadOnlyList<int>?> placement, Func<MeshRank, IProcessGroup, bool, T> stage) where T : class =>
        MeshRunner.Run(DeviceMesh.Create(Config.Mesh), rank =>
        {
            var members = placement(rank.Mesh, Config, rank.Id);
            if (members is null) return null;
            bool reporter = rank.Id == FirstParticipant(placement, rank.Mesh);
            return stage(rank, rank.Group("stage_tp", members), reporter);
        }, _options);

    int FirstParticipant(Func<DeviceMesh, ParallelConfig, int, IReadOnlyList<int>?> placement, DeviceMesh mesh) =>
        mesh.Ids.First(id => placement(mesh, Config, id) is not null);

    /// <summary>Every participating device computed the same result; keep the first and release the others.</summary>
    static T KeepFirst<T>(IReadOnlyList<T?> results, Action<T> release) where T : class
    {
        var first = results.First(r => r is not null)!;
        foreach (var other in results) if (other is not null && !ReferenceEquals(other, first)) release(other);
        return first;
    }

    Tensor RankProgram(DenoisingJob job, ParallelRank placed, SD3TransformerConfig transformerConfig, DenoisingObservers observers, bool isReporter)
    {
        var watch = Stopwatch.StartNew();
        using var model = SD3Transformer2DModel.FromFolder(job.TransformerFolder, placed.Context, job.DType);
        if (isReporter) observers.Timings.LoadSeconds += watch.Elapsed.TotalSeconds;

        var branch = new BranchInputs(job, placed, Config.Cfg.Factor);
        var latents = job.InitialLatents.to(placed.Context.Device, copy: true);
        for (int i = 0; i < job.Scheduler.NumInferenceSteps; i++)
        {
            watch.Restart();
            using (var scope = NewDisposeScope())
            {
                var velocity = Velocity(model, branch, placed, latents, job.Scheduler.Timesteps[i], job.SkipLayersAt(i) ? job.SkipLayers : null, job.Request.GuidanceScale);
                var next = job.Scheduler.Step(velocity, i, latents).MoveToOuterDisposeScope();
                latents.Dispose();
                latents = next;
            }
            if (isReporter)
            {
                using var hostLatents = latents.cpu();
                observers.StepDone(i, watch.Elapsed.TotalSeconds, hostLatents);
            }
        }
        using (branch)
        using (latents)
            return latents.cpu();
    }

    /// <summary>One step's guided velocity, identical on every device.</summary>
    static Tensor Velocity(SD3Transformer2DModel model, BranchInputs branch, ParallelRank placed, Tensor latents, float timestep,
        SkipLayerGuidance? skip, double scale)
    {
        var input = branch.Batch == 2 ? cat([latents, latents], 0) : latents;
        var prediction = model.Forward(input, branch.Embeds, branch.Pooled, full([input.shape[0]], timestep, float32));
        if (!branch.Guided) return prediction;

        // [uncond ; cond]: from the batch on a single submesh, or gathered from the two cfg submeshes.
        var both = branch.Batch == 2 ? prediction : placed.Cfg.AllGather(prediction, 0);
        var halves = both.chunk(2, 0);
        var guided = Guidance.Classifier(halves[0], halves[1], scale);
        if (skip is null) return guided;

        // Skip-layer guidance needs one more conditional pass; with cfg = 2 the conditional submesh computes it
        // and hands it to its unconditional partner (every device takes part in the collective).
        Tensor skipped;
        if (branch.Batch == 2 || placed.CfgIndex == 1)
            skipped = model.Forward(latents, branch.PositiveEmbeds, branch.PositivePooled, full([latents.shape[0]], timestep, float32), skip.Layers);
        else
            skipped = zeros_like(prediction);
        if (branch.Batch == 1) skipped = placed.Cfg.Broadcast(skipped, root: 1);
        return Guidance.SkipLayer(guided, halves[1], skipped, skip.Scale);
    }

    /// <summary>The prompt tensors this device's branch runs with, moved to its device once.</summary>
    sealed class BranchInputs : IDisposable
    {
        public Tensor Embeds { get; }
        public Tensor Pooled { get; }
        public Tensor PositiveEmbeds { get; }
        public Tensor PositivePooled { get; }
        public bool Guided { get; }
        /// <summary>2 when one submesh runs both branches as a batch; 1 when each submesh runs its own branch (or there is no guidance).</summary>
        public int Batch { get; }

        public BranchInputs(DenoisingJob job, ParallelRank placed, int cfgFactor)
        {
            var device = placed.Context.Device;
            var positive = job.Prompt.Positive;
            var negative = job.Prompt.Negative;
            Guided = negative is not null;
            PositiveEmbeds = positive.PromptEmbeds.to(device);
            PositivePooled = positive.PooledPromptEmbeds.to(device);
            if (negative is null)
            {
                (Embeds, Pooled, Batch) = (PositiveEmbeds, PositivePooled, 1);
            }
            else if (cfgFactor == 2)
            {
                var mine = placed.IsUncond ? negative : positive;
                (Embeds, Pooled, Batch) = (mine.PromptEmbeds.to(device), mine.PooledPromptEmbeds.to(device), 1);
            }
            else
            {
                Embeds = cat([negative.PromptEmbeds, positive.PromptEmbeds], 0).to(device);
                Pooled = cat([negative.PooledPromptEmbeds, positive.PooledPromptEmbeds], 0).to(device);
                Batch = 2;
            }
        }

        public void Dispose()
        {
            foreach (var tensor in new[] { Embeds, Pooled, PositiveEmbeds, PositivePooled }.Distinct()) tensor.Dispose();
        }
    }
}
