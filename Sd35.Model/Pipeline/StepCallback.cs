namespace Sd35.Pipeline;

/// <summary>
/// Progress for <see cref="StableDiffusion3Pipeline.Generate"/> that calls back at once, on the lead device's thread,
/// after each step. <see cref="Progress{T}"/> would post to a synchronization context or the thread pool and see the
/// step later, while the run goes on; a caller that cancels "after step n" needs to see step n when it happens.
/// </summary>
public sealed class StepCallback(Action<int> stepsDone) : IProgress<int>
{
    public void Report(int value) => stepsDone(value);
}
