using Sd35.Profiling;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// Watches one generation (given to <see cref="StableDiffusion3Pipeline.Generate"/>) or all of a pipeline's
/// (<see cref="StableDiffusion3Pipeline.Observe"/>): every method is optional. Stage and step events come on the lead
/// device's thread, in order: <c>StageStarted(TextEncoding)</c>, <c>StageEnded(TextEncoding)</c>, for an image the same
/// for <c>ImageEncoding</c>, <c>StageStarted(Denoising)</c>, one <see cref="StepEnded"/> per step,
/// <c>StageEnded(Denoising)</c>, then <c>VaeDecoding</c>. A stage has ended once its models are released (staged
/// residency). Model loads come on the loading device's thread (on a mesh, several at once).
/// Stopping at a step boundary, as diffusers' <c>callback_on_step_end</c> lets one: cancel the generation's token in
/// <see cref="StepEnded"/>; every device stops after that step (<see cref="GenerationCancelledException"/>).
/// </summary>
public interface IGenerationObserver
{
    void StageStarted(GenerationStage stage) { }

    void StageEnded(GenerationStage stage) { }

    void StepEnded(DenoisingStepEnd step) { }

    void ModelLoaded(ModelLoad load) { }
}

/// <summary>
/// One finished denoising step: its index (from 0), the steps that run, its seconds, and the latents after it.
/// The latents are a CPU copy made on first use and disposed after the observers return: clone to keep them.
/// </summary>
public sealed class DenoisingStepEnd(int index, int count, double seconds, Tensor deviceLatents) : IDisposable
{
    Tensor? _host;

    public int Index { get; } = index;
    /// <summary>The steps this generation runs (image to image runs strength × the scheduled steps).</summary>
    public int Count { get; } = count;
    /// <summary>The steps finished, this one included.</summary>
    public int Done => Index + 1;
    public double Seconds { get; } = seconds;
    public Tensor Latents => _host ??= ShapeOnly.ToHost(deviceLatents);

    public void Dispose() => _host?.Dispose();
}

/// <summary>Several observers as one, each told every event in the order given.</summary>
public static class GenerationObserver
{
    /// <summary>Nobody watching.</summary>
    public static IGenerationObserver None { get; } = new Nobody();

    public static IGenerationObserver Combine(params IGenerationObserver?[] observers)
    {
        var present = observers.Where(o => o is not null && o != None).Select(o => o!).ToArray();
        return present.Length switch { 0 => None, 1 => present[0], _ => new All(present) };
    }

    /// <summary>An observer made of the callbacks given (tests, small tools); the others do nothing.</summary>
    public static IGenerationObserver Of(Action<GenerationStage>? stageStarted = null, Action<GenerationStage>? stageEnded = null,
        Action<DenoisingStepEnd>? stepEnded = null, Action<ModelLoad>? modelLoaded = null) =>
        new Callbacks(stageStarted, stageEnded, stepEnded, modelLoaded);

    sealed class Nobody : IGenerationObserver;

    sealed class Callbacks(Action<GenerationStage>? stageStarted, Action<GenerationStage>? stageEnded,
        Action<DenoisingStepEnd>? stepEnded, Action<ModelLoad>? modelLoaded) : IGenerationObserver
    {
        public void StageStarted(GenerationStage stage) => stageStarted?.Invoke(stage);
        public void StageEnded(GenerationStage stage) => stageEnded?.Invoke(stage);
        public void StepEnded(DenoisingStepEnd step) => stepEnded?.Invoke(step);
        public void ModelLoaded(ModelLoad load) => modelLoaded?.Invoke(load);
    }

    sealed class All(IGenerationObserver[] observers) : IGenerationObserver
    {
        public void StageStarted(GenerationStage stage)
        {
            foreach (var o in observers) o.StageStarted(stage);
        }

        public void StageEnded(GenerationStage stage)
        {
            foreach (var o in observers) o.StageEnded(stage);
        }

        public void StepEnded(DenoisingStepEnd step)
        {
            foreach (var o in observers) o.StepEnded(step);
        }

        public void ModelLoaded(ModelLoad load)
        {
            foreach (var o in observers) o.ModelLoaded(load);
        }
    }
}
