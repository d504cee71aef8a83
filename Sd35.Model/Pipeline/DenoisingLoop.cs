using System.Diagnostics;
using Sd35.Mesh;
using Sd35.Models.Transformer;
using static TorchSharp.torch;
using Sd35.Profiling;

namespace Sd35.Pipeline;

/// <summary>
/// The denoising loop of diffusers' <c>StableDiffusion3Pipeline.__call__</c> as one device's part of it: the device
/// runs its guidance branch (<see cref="GuidanceBranch"/>; both, as a batch of two, on a cfg group of one) and
/// gathers the branches' predictions over the cfg group before <see cref="Guidance"/>.
/// </summary>
static class DenoisingLoop
{
    /// <param name="latents">this device's copy of the initial latents; consumed (each step's input is released)</param>
    /// <param name="stepDone">called after each step with its index, the latents and its seconds (on the reporting device)</param>
    /// <param name="trace">when given, each step is captured (the first of its kind on this rank) or checked against the capture</param>
    /// <param name="afterStep">what follows the scheduler's step (inpainting's kept region), outside the traced step: it
    /// differs on the last step; returns the latents to go on with, consuming its input when it makes new ones</param>
    public static Tensor Run(SD3Transformer2DModel transformer, GuidanceBranch branch, MeshRank rank, Tensor latents,
        FlowMatchEulerScheduler scheduler, GenerationRequest request, Action<int, Tensor, double>? stepDone, Sd35.Mesh.Tracing.StepTrace? trace = null,
        Func<int, Tensor, Tensor>? afterStep = null)
    {
        // Skip-layer guidance comes with text to image only (a request with an input image refuses it).
        int steps = scheduler.NumInferenceSteps;
        var skipLayers = branch.Guided ? request.SkipLayerGuidance : null;
        using var conditioning = Condition(transformer, scheduler, branch.Embeds, branch.Pooled);
        // The skip-layer pass runs the positive branch alone, where it runs. A device that runs only the positive branch
        // (the conditional cfg submesh) already has exactly that conditioning; one running the batch of both makes its own.
        bool skipsAnywhere = skipLayers is not null && Enumerable.Range(0, steps).Any(i => skipLayers.AppliesAt(i, steps));
        using var ownSkipConditioning = skipsAnywhere && branch.RunsPositive && branch.Batch == 2
            ? Condition(transformer, scheduler, branch.PositiveEmbeds, branch.PositivePooled) : null;
        var skipConditioning = skipsAnywhere && branch.RunsPositive ? ownSkipConditioning ?? conditioning : null;
        var watch = new Stopwatch();
        for (int i = 0; i < steps; i++)
        {
            watch.Restart();
            DenoisingHooks.BeforeStep?.Invoke(i, rank.Id.Value);
            bool skipping = skipLayers is not null && skipLayers.AppliesAt(i, steps);
            using (Instrumentation.InSection(PerfSections.Step))
            using (var traced = trace?.Step(rank.Id.Value, !branch.Guided ? "unguided" : skipping ? "guided_skip_layers" : "guided"))
            using (var scope = NewDisposeScope())
            {
                // expand the latents if we are doing classifier-free guidance (on this device)
                var latentModelInput = branch.Batch == 2 ? cat([latents, latents], 0) : latents;
                var noisePred = transformer.Forward(latentModelInput, conditioning, i);
                if (branch.Guided)
                {
                    // [uncond ; cond], gathered over the cfg group (the identity when this device ran both).
                    var halves = rank.Cfg.AllGather(noisePred, 0).chunk(2, 0);
                    var (uncond, cond) = (halves[0], halves[1]);
                    noisePred = Guidance.Classifier(uncond, cond, request.GuidanceScale);
                    if (skipping && skipLayers is not null)
                        noisePred = Guidance.SkipLayer(noisePred, cond, SkipLayerPrediction(transformer, skipConditioning, rank, latents, cond, i, skipLayers), skipLayers.Scale);
                }
                var next = scheduler.Step(noisePred, i, latents);
                traced?.Complete();
                if (afterStep is not null) next = afterStep(i, next);
                next.MoveToOuterDisposeScope();
                latents.Dispose();
                latents = next;
            }
            // Every device holds the same latents after a step, so every device checks them and all fail together
            // (under MPI that ends the generation, not the job).
            FiniteCheck.Ensure(latents, FiniteCheck.Denoising, i + 1, byEveryRank: true);
            stepDone?.Invoke(i, latents, watch.Elapsed.TotalSeconds);
        }
        return latents;
    }

    /// <summary>
    /// The latent-independent part of every step, made once before the first (one GEMM per norm for the whole
    /// schedule), in its own section: the cost model divides it over the steps it covers.
    /// </summary>
    static TransformerConditioning Condition(SD3Transformer2DModel transformer, FlowMatchEulerScheduler scheduler, Tensor embeds, Tensor pooled)
    {
        using var section = Instrumentation.InSection(PerfSections.Conditioning);
        using var scope = NewDisposeScope();
        var timesteps = tensor(scheduler.Timesteps.ToArray(), float32).unsqueeze(1).expand(scheduler.NumInferenceSteps, pooled.shape[0]);
        return transformer.Condition(embeds, pooled, timesteps); // owns its tensors: the scope does not take them
    }

    /// <summary>
    /// Skip-layer guidance's extra conditional pass with the guidance layers skipped. With a cfg group of two the
    /// conditional submesh computes it and hands it to its unconditional partner (every device takes part).
    /// </summary>
    static Tensor SkipLayerPrediction(SD3Transformer2DModel transformer, TransformerConditioning? positive, MeshRank rank, Tensor latents, Tensor cond, int step, SkipLayerGuidance skip)
    {
        var skipped = positive is not null
            ? transformer.Forward(latents, positive, step, skip.Layers)
            : zeros_like(cond); // the receiving side's buffer
        return rank.Cfg.Size == 1 ? skipped : rank.Cfg.Broadcast(skipped, root: 1);
    }
}
