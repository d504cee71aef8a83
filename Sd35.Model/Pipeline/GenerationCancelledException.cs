using Sd35.Mesh;

namespace Sd35.Pipeline;

/// <summary>
/// The generation stopped at a denoising step boundary because its cancellation token was set: every device stopped
/// after the same step (the lead decided, all agreed), so no device is left in a collective and the pipeline, with
/// any models it keeps, is ready for the next generation.
/// </summary>
public sealed class GenerationCancelledException(int stepsDone)
    : AgreedStopException($"the generation was cancelled after {stepsDone} denoising step(s)")
{
    public int StepsDone { get; } = stepsDone;
}
