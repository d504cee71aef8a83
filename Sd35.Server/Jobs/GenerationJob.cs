using System.Runtime.CompilerServices;
using Sd35.Pipeline;

namespace Sd35.Server.Jobs;

public enum JobStatus { Queued, Running, Succeeded, Failed, Cancelled }

/// <summary>
/// One accepted request, from the queue to its PNG. Its state changes only through the methods below (under one
/// lock); every change wakes the server-sent-event streams watching it.
/// </summary>
public sealed class GenerationJob
{
    readonly object _lock = new();
    readonly CancellationTokenSource _cancel = new();
    TaskCompletionSource _changed = NewSignal();
    JobStatus _status = JobStatus.Queued;
    int _step;
    StageTimings? _timings;
    string? _error;
    DateTimeOffset? _started, _finished;

    public GenerationJob(GenerationRequest request)
    {
        Id = Guid.NewGuid().ToString("N");
        Request = request;
    }

    /// <summary>The id of the HTTP request that made this job (its log lines carry it); null outside a request.</summary>
    public string? RequestId { get; } = Hosting.RequestIds.Current;

    /// <summary>32 hex digits made by the server: it names the PNG file, so no client text ever becomes a path.</summary>
    public string Id { get; }
    public GenerationRequest Request { get; }
    public DateTimeOffset Created { get; } = DateTimeOffset.UtcNow;
    public string? PngPath { get; private set; }
    public CancellationToken CancellationToken => _cancel.Token;

    public bool IsFinished
    {
        get { lock (_lock) return _status is JobStatus.Succeeded or JobStatus.Failed or JobStatus.Cancelled; }
    }

    public JobStatus Status
    {
        get { lock (_lock) return _status; }
    }

    public void Start() => Change(() => { _status = JobStatus.Running; _started = DateTimeOffset.UtcNow; });

    public void StepDone(int done) => Change(() => _step = done);

    public void Succeed(string pngPath, StageTimings timings) =>
        Finish(JobStatus.Succeeded, null, timings, () => PngPath = pngPath);

    public void Fail(string error, StageTimings? timings = null) => Finish(JobStatus.Failed, error, timings);

    public void Cancelled(string reason) => Finish(JobStatus.Cancelled, reason, null);

    /// <summary>Asks a running job to stop at its next step boundary (a queued one is cancelled by the queue).</summary>
    public void RequestCancel() => _cancel.Cancel();

    /// <summary>The file is gone (the job was forgotten); the job no longer offers an image.</summary>
    public void Forget() => Change(() => PngPath = null);

    void Finish(JobStatus status, string? error, StageTimings? timings, Action? also = null) => Change(() =>
    {
        if (_status is JobStatus.Succeeded or JobStatus.Failed or JobStatus.Cancelled) return;
        _status = status;
        _error = error;
        _timings = timings ?? _timings;
        _finished = DateTimeOffset.UtcNow;
        also?.Invoke();
    });

    void Change(Action change)
    {
        TaskCompletionSource changed;
        lock (_lock)
        {
            change();
            changed = _changed;
            _changed = NewSignal();
        }
        changed.TrySetResult();
    }

    static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public JobSnapshot Snapshot(int? queuePosition = null)
    {
        lock (_lock)
        {
            var request = Request;
            return new JobSnapshot(
                Id, _status, _step, request.Steps, request.Steps == 0 ? 0 : (double)_step / request.Steps, queuePosition,
                JobParameters.Of(request), _timings is null ? null : SectionTimings.Of(_timings), _error,
                Created, _started, _finished);
        }
    }

    /// <summary>The job's state now and after every change, until it is finished (the last item is the final state).</summary>
    public async IAsyncEnumerable<JobSnapshot> Updates(Func<int?> queuePosition, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (true)
        {
            int? position = queuePosition();
            Task changed;
            JobSnapshot snapshot;
            lock (_lock)
            {
                changed = _changed.Task;
                snapshot = Snapshot(position);
            }
            yield return snapshot;
            if (snapshot.Status is JobStatus.Succeeded or JobStatus.Failed or JobStatus.Cancelled) yield break;
            await changed.WaitAsync(cancellationToken);
        }
    }
}

/// <summary>What <c>GET /v1/images/{id}</c> answers (snake_case on the wire).</summary>
public sealed record JobSnapshot(
    string Id, JobStatus Status, int Step, int Steps, double Progress, int? QueuePosition,
    JobParameters Parameters, SectionTimings? Timings, string? Error,
    DateTimeOffset Created, DateTimeOffset? Started, DateTimeOffset? Finished);

/// <summary>The values the job runs with, defaults filled in.</summary>
public sealed record JobParameters(
    string Prompt, string NegativePrompt, int Steps, double Guidance, long Seed, int Width, int Height, int[]? SkipLayerGuidanceLayers)
{
    public static JobParameters Of(GenerationRequest r) =>
        new(r.Prompt, r.NegativePrompt, r.Steps, r.GuidanceScale, r.Seed, r.Width, r.Height, r.SkipLayerGuidance?.Layers);
}

/// <summary>Seconds per section of the pipeline: loading models, text encoding, each denoising step, VAE decoding.</summary>
public sealed record SectionTimings(
    double LoadSeconds, double EncodingSeconds, double DenoisingSeconds, IReadOnlyList<double> StepSeconds, double DecodingSeconds, double TotalSeconds)
{
    public static SectionTimings Of(StageTimings t) =>
        new(t.LoadSeconds, t.EncodingSeconds, t.DenoisingSeconds, [.. t.StepSeconds], t.DecodingSeconds, t.TotalSeconds);
}
