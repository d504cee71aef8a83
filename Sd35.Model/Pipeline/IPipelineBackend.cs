using Sd35.Models.Transformer;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>Everything the denoising loop needs: where the transformer is, the encoded prompt, the start and the schedule.</summary>
public sealed record DenoisingJob(
    string TransformerFolder, ScalarType DType, EncodedPrompt Prompt, Tensor InitialLatents,
    FlowMatchEulerScheduler Scheduler, GenerationRequest Request)
{
    public bool Guided => Prompt.Negative is not null;
    public SkipLayerGuidance? SkipLayers => Guided ? Request.SkipLayerGuidance : null;
    public bool SkipLayersAt(int step) => SkipLayers?.AppliesAt(step, Request.Steps) ?? false;
}

/// <summary>Observers of the loop: per-step timing, the latents after each step, progress.</summary>
public sealed record DenoisingObservers(StageTimings Timings, Action<int, Tensor>? OnStep, IProgress<int>? Progress)
{
    public void StepDone(int step, double seconds, Tensor latents)
    {
        Timings.AddStep(seconds);
        OnStep?.Invoke(step, latents);
        Progress?.Report(step + 1);
    }
}

/// <summary>
/// Where the pipeline's stages run: one device, or a device mesh. A backend checks a request against its layout
/// before any work, encodes the prompt, runs the whole denoising loop (load the transformer, then for every step
/// predict, guide and take the Euler step) and decodes the latents.
/// </summary>
public interface IPipelineBackend
{
    /// <summary>Throws, before any model is loaded, if the request cannot run on this backend.</summary>
    void Validate(PipelineComponents components, GenerationRequest request);

    EncodedPrompt Encode(PipelineComponents components, ScalarType dtype, GenerationRequest request, StageTimings timings);

    /// <summary>Returns the final latents on the CPU.</summary>
    Tensor Denoise(DenoisingJob job, DenoisingObservers observers);

    /// <summary>Returns the image in [0, 1], float32, on the CPU.</summary>
    Tensor Decode(PipelineComponents components, ScalarType dtype, Tensor latents, StageTimings timings);
}

/// <summary>Every stage on one device, as diffusers runs it: guidance as a batch of two.</summary>
public sealed class SingleDevice : IPipelineBackend
{
    public static SingleDevice Instance { get; } = new();

    public void Validate(PipelineComponents components, GenerationRequest request) { }

    public EncodedPrompt Encode(PipelineComponents components, ScalarType dtype, GenerationRequest request, StageTimings timings) =>
        PipelineStages.Encode(components, dtype, request, Mesh.SingleProcessGroup.Instance, CPU, timings);

    public Tensor Decode(PipelineComponents components, ScalarType dtype, Tensor latents, StageTimings timings) =>
        PipelineStages.Decode(components, dtype, latents, Mesh.SingleProcessGroup.Instance, CPU, timings);

    public Tensor Denoise(DenoisingJob job, DenoisingObservers observers)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        using var transformer = SD3Transformer2DModel.FromFolder(job.TransformerFolder, dtype: job.DType);
        observers.Timings.LoadSeconds += watch.Elapsed.TotalSeconds;
        using var denoiser = new TransformerDenoiser(transformer, job.Prompt.Positive, job.Prompt.Negative, job.Request.GuidanceScale, job.SkipLayers);

        var latents = job.InitialLatents.alias();
        for (int i = 0; i < job.Scheduler.NumInferenceSteps; i++)
        {
            watch.Restart();
            using (var scope = NewDisposeScope())
            {
                var velocity = denoiser.Predict(latents, job.Scheduler.Timesteps[i], job.SkipLayersAt(i));
                var next = job.Scheduler.Step(velocity, i, latents).MoveToOuterDisposeScope();
                latents.Dispose();
                latents = next;
            }
            observers.StepDone(i, watch.Elapsed.TotalSeconds, latents);
        }
        return latents;
    }
}
