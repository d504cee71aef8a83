namespace Sd35.Pipeline;

/// <summary>
/// An observer of the finished steps only: calls back with the steps done (1, 2, …) at once, on the lead device's
/// thread, after each step, so a caller that cancels "after step n" sees step n when it happens.
/// </summary>
public sealed class StepCallback(Action<int> stepsDone) : IGenerationObserver
{
    public void StepEnded(DenoisingStepEnd step) => stepsDone(step.Done);
}
