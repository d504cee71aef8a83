using System.Collections.Concurrent;
using Sd35.Server.Jobs;

namespace Sd35.Server.Tests;

/// <summary>
/// Keeps a job running, whatever a step costs: after each finished step of a job with the given prompt, the
/// generation thread waits until that job is cancelled, the server begins to stop, the hold is disposed, or (with a
/// <c>pause</c>) that long has passed. Tests of "cancel a running job" used to rely on 200 tiny steps outlasting their
/// polling, which a loaded 2-core machine with resident models did not always grant; a pause makes each step's
/// progress event its own. Make the hold before submitting, so no step escapes it.
/// </summary>
public sealed class StepHold : IDisposable
{
    readonly GenerationQueue _queue;
    readonly string _prompt;
    readonly TimeSpan? _pause;
    readonly ManualResetEventSlim _released = new();
    readonly ConcurrentDictionary<string, int> _heldAt = new();

    /// <param name="pause">null: hold until cancelled, stopped or disposed; otherwise at most this long per step</param>
    public StepHold(GenerationQueue queue, string prompt, TimeSpan? pause = null)
    {
        _queue = queue;
        _prompt = prompt;
        _pause = pause;
        queue.StepFinished += OnStep;
    }

    /// <summary>The step the job is held after, once it is held (the test waits for this instead of polling status).</summary>
    public async Task<int> WaitHeld(string id, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(2));
        while (!_heldAt.ContainsKey(id))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"job {id} was not held within the time; status {_queue.Find(id)?.Status}");
            await Task.Delay(10);
        }
        return _heldAt[id];
    }

    void OnStep(GenerationJob job, int step)
    {
        if (job.Request.Prompt != _prompt) return;
        _heldAt[job.Id] = step;
        var handles = new[] { job.CancellationToken.WaitHandle, _released.WaitHandle };
        var until = _pause is { } pause ? DateTime.UtcNow + pause : DateTime.MaxValue;
        // The queue's stop has no handle of its own; a short poll notices it.
        while (WaitHandle.WaitAny(handles, TimeSpan.FromMilliseconds(10)) == WaitHandle.WaitTimeout && !_queue.Stopping && DateTime.UtcNow < until)
        {
        }
    }

    public void Dispose()
    {
        _queue.StepFinished -= OnStep;
        _released.Set();
    }
}
