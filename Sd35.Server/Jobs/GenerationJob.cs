using System.Runtime.CompilerServices;
using Sd35.Pipeline;

namespace Sd35.Server.Jobs;

public enum JobStatus { Queued, Running, Succeeded, Failed, Cancelled }

/// <summary>
/// One accepted request, from the queue to its PNG. Its state changes only through the methods below (under one
/// lock); every change wakes the server-sent-event streams watching it. It observes its own generation: the stage
/// running and the steps done.
/// </summary>
public sealed class GenerationJob : IGenerationObserver
{
    readonly object _lock = new();
    readonly CancellationTokenSource _cancel = new();
    TaskCompletionSource _changed = NewSignal();
    JobStatus _status = JobStatus.Queued;
    int _step;
    GenerationStage? _stage;
    StageTimings? _timings;
    string? _error;
    DateTimeOffset? _started, _finished;
    GenerationRequest _request;

    public GenerationJob(GenerationRequest request)
    {
        Id = Guid.NewGuid().ToString("N");
        _request = request;
        // What the status reports, computed once: the mask's region is a scan of every pixel, and the request's
        // pictures are dropped when the job ends.
        Parameters = JobParameters.Of(request);
        StepsRun = request.StepsRun;
    }

    /// <summary>The id of the HTTP request that made this job (its log lines carry it); null outside a request.</summary>
    public string? RequestId { get; } = Hosting.RequestIds.Current;

    /// <summary>32 hex digits made by the server: it names the PNG file, so no client text ever becomes a path.</summary>
    public string Id { get; }
    /// <summary>
    /// What the job runs with. Once it is finished its input image and mask are dropped — a kept job (<c>--keep-jobs</c>)
    /// would otherwise hold 3 × H × W floats for each — and <see cref="Parameters"/> keeps what the status reports.
    /// </summary>
    public GenerationRequest Request
    {
        get { lock (_lock) return _request; }
    }

    /// <summary>Whether the job still references its input image or mask (until it is finished).</summary>
    public bool HoldsInputPictures
    {
        get { lock (_lock) return _request.Image is not null || _request.Mask is not null; }
    }

    /// <summary>The values the job runs with, as its status reports them (mode, strength, the mask's region included).</summary>
    public JobParameters Parameters { get; }

    /// <summary>The denoising steps that run (image to image runs strength × the scheduled steps).</summary>
    public int StepsRun { get; }
    public DateTimeOffset Created { get; } = DateTimeOffset.UtcNow;
    /// <summary>The first image's file (of <see cref="PngPaths"/>), once succeeded.</summary>
    public string? PngPath => PngPaths.FirstOrDefault();
    /// <summary>Every image's file, in the batch's order (one per image of <c>n</c>), once succeeded; empty before and once forgotten.</summary>
    public IReadOnlyList<string> PngPaths { get; private set; } = [];
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

    void IGenerationObserver.StageStarted(GenerationStage stage) => Change(() => _stage = stage);

    void IGenerationObserver.StepEnded(DenoisingStepEnd step) => StepDone(step.Done);

    public void Succeed(IReadOnlyList<string> pngPaths, StageTimings timings) =>
        Finish(JobStatus.Succeeded, null, timings, () => PngPaths = pngPaths);

    public void Fail(string error, StageTimings? timings = null) => Finish(JobStatus.Failed, error, timings);

    public void Cancelled(string reason) => Finish(JobStatus.Cancelled, reason, null);

    /// <summary>Asks a running job to stop at its next step boundary (a queued one is cancelled by the queue).</summary>
    public void RequestCancel() => _cancel.Cancel();

    /// <summary>The file is gone (the job was forgotten); the job no longer offers an image.</summary>
    public void Forget() => Change(() => PngPaths = []);

    void Finish(JobStatus status, string? error, StageTimings? timings, Action? also = null) => Change(() =>
    {
        if (_status is JobStatus.Succeeded or JobStatus.Failed or JobStatus.Cancelled) return;
        _status = status;
        _error = error;
        _timings = timings ?? _timings;
        _finished = DateTimeOffset.UtcNow;
        _request = _request with { Image = null, Mask = null };
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
            int steps = StepsRun;
            return new JobSnapshot(
                Id, _status, _status == JobStatus.Running ? _stage : null, _step, steps, steps == 0 ? 0 : (double)_step / steps, queuePosition,
                Parameters, _timings is null ? null : SectionTimings.Of(_timings), _error,
                Created, _started, _finished, PngPaths.Select((_, i) => $"/v1/images/{Id}/png/{i + 1}").ToList());
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

/// <summary>What <c>GET /v1/images/{id}</c> answers (snake_case on the wire). <paramref name="Stage"/>: the stage running
/// (<c>text_encoding</c>, <c>image_encoding</c>, <c>denoising</c>, <c>vae_decoding</c>) while the job runs, else null;
/// <paramref name="Steps"/>: the steps that run
/// (image to image runs strength × the scheduled steps); <paramref name="Images"/>: each image's address once succeeded.</summary>
public sealed record JobSnapshot(
    string Id, JobStatus Status, GenerationStage? Stage, int Step, int Steps, double Progress, int? QueuePosition,
    JobParameters Parameters, SectionTimings? Timings, string? Error,
    DateTimeOffset Created, DateTimeOffset? Started, DateTimeOffset? Finished, IReadOnlyList<string> Images);

/// <summary>
/// The values the job runs with, defaults filled in: the text-to-image ones, images per prompt (<c>n</c>), the texts
/// per encoder, no T5, and for image to image the mode, strength and image size, for inpainting the mask's repaint
/// region (pixels ≥ 50 % grey: its area and bounding box), so a client can check what the server received.
/// </summary>
public sealed record JobParameters(
    string Prompt, string NegativePrompt, int Steps, double Guidance, long Seed, int Width, int Height, int[]? SkipLayerGuidanceLayers,
    int N, string? Prompt2, string? Prompt3, string? NegativePrompt2, string? NegativePrompt3, bool NoT5,
    string Mode, double? Strength, MaskRegion? Mask)
{
    public static JobParameters Of(GenerationRequest r) =>
        new(r.Prompt, r.NegativePrompt, r.Steps, r.GuidanceScale, r.Seed, r.Width, r.Height, r.SkipLayerGuidance?.Layers,
            r.NumImagesPerPrompt, r.Prompt2, r.Prompt3, r.NegativePrompt2, r.NegativePrompt3, r.NoT5,
            r.Mask is not null ? "inpainting" : r.Image is not null ? "image_to_image" : "text_to_image",
            r.Image is null ? null : r.StrengthOrDefault, r.Mask is null ? null : MaskRegion.Of(r.Mask));
}

/// <summary>The repaint region of an inpainting mask: its pixel count and bounding box (x, y from the top left).</summary>
public sealed record MaskRegion(long Area, int X, int Y, int Width, int Height)
{
    public static MaskRegion Of(InputImage mask)
    {
        var (area, x, y, width, height) = mask.RepaintRegion();
        return new MaskRegion(area, x, y, width, height);
    }
}

/// <summary>Seconds per section of the pipeline: loading models, text encoding, image encoding (VAE encoder; 0 for text to image), each denoising step, VAE decoding.</summary>
public sealed record SectionTimings(
    double LoadSeconds, double EncodingSeconds, double DenoisingSeconds, IReadOnlyList<double> StepSeconds, double DecodingSeconds, double TotalSeconds,
    double ImageEncodingSeconds)
{
    public static SectionTimings Of(StageTimings t) =>
        new(t.LoadSeconds, t.EncodingSeconds, t.DenoisingSeconds, [.. t.StepSeconds], t.DecodingSeconds, t.TotalSeconds, t.ImageEncodingSeconds);
}
