using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sd35.Errors;
using Sd35.Pipeline;
using Sd35.Server.Hosting;

namespace Sd35.Server.Jobs;

/// <summary>
/// The bounded queue in front of the one pipeline, and the one worker thread that runs it.
/// One generation at a time: a generation already uses every core (libtorch's intra-op threads) and, on a mesh,
/// every device of the one SPMD program; a second one at the same time would only split the same compute, double
/// the peak memory (each stage loads its models), and finish both later than running them in turn.
/// Jobs beyond <see cref="ServerOptions.QueueLength"/> are refused (429) rather than queued without bound.
/// </summary>
public sealed class GenerationQueue(PipelineAdapter pipeline, OutputFolder output, ServerOptions options, ILogger<GenerationQueue> logger)
    : BackgroundService
{
    readonly object _lock = new();
    readonly LinkedList<GenerationJob> _waiting = new();
    readonly SemaphoreSlim _arrivals = new(0);
    readonly ConcurrentDictionary<string, GenerationJob> _jobs = new();
    readonly ConcurrentQueue<GenerationJob> _finished = new();
    GenerationJob? _running;
    double _averageSeconds = 1;
    bool _stopping;

    public int Capacity => options.QueueLength;

    public int Waiting
    {
        get { lock (_lock) return _waiting.Count; }
    }

    public bool Busy
    {
        get { lock (_lock) return _running is not null; }
    }

    /// <summary>True once the server has begun to stop: no job is accepted and the running one is being stopped.</summary>
    public bool Stopping
    {
        get { lock (_lock) return _stopping; }
    }

    /// <summary>
    /// Raised on the generation thread after each finished step of the running job, before the next step starts.
    /// A handler that blocks holds the generation there; the tests use it to keep a job running however fast a step is.
    /// </summary>
    public event Action<GenerationJob, int>? StepFinished;

    public GenerationJob? Find(string id) => _jobs.TryGetValue(id, out var job) ? job : null;

    /// <summary>Queues the job, or returns false when the queue is full (or the server is stopping).</summary>
    public bool TryEnqueue(GenerationJob job) => TryEnqueue([job]);

    /// <summary>Queues all the jobs or none (one request's images): false when they do not all fit.</summary>
    public bool TryEnqueue(IReadOnlyList<GenerationJob> jobs)
    {
        lock (_lock)
        {
            if (_stopping || _waiting.Count + jobs.Count > options.QueueLength)
            {
                Refusals++;
                return false;
            }
            foreach (var job in jobs)
            {
                _waiting.AddLast(job);
                _jobs[job.Id] = job;
            }
        }
        _arrivals.Release(jobs.Count);
        return true;
    }

    /// <summary>Requests refused because the queue was full or the server stopping, since the start (a metric).</summary>
    public long Refusals { get; private set; }

    /// <summary>Raised when a job has run to its end (succeeded, failed or cancelled) or was cancelled while waiting.</summary>
    public event Action<GenerationJob>? JobFinished;

    /// <summary>0 for the next job to run; null when the job is not waiting.</summary>
    public int? PositionOf(GenerationJob job)
    {
        lock (_lock)
        {
            int i = 0;
            for (var node = _waiting.First; node is not null; node = node.Next, i++)
                if (ReferenceEquals(node.Value, job)) return i;
            return null;
        }
    }

    /// <summary>Seconds until a slot is likely free: the jobs ahead times the recent average generation time.</summary>
    public int RetryAfterSeconds()
    {
        lock (_lock) return Math.Max(1, (int)Math.Ceiling(_averageSeconds * Math.Max(1, _waiting.Count)));
    }

    /// <summary>A waiting job is cancelled at once; a running one at its next step boundary. False if already finished.</summary>
    public bool Cancel(GenerationJob job)
    {
        bool wasWaiting;
        lock (_lock) wasWaiting = _waiting.Remove(job);
        if (wasWaiting)
        {
            job.Cancelled("cancelled while queued");
            Remember(job);
            JobFinished?.Invoke(job);
            return true;
        }
        if (job.IsFinished) return false;
        job.RequestCancel();
        return true;
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        // A dedicated thread: TorchSharp's dispose scopes are per thread, and a generation blocks for its whole length.
        Task.Factory.StartNew(() => RunJobs(stoppingToken), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    void RunJobs(CancellationToken stopping)
    {
        try
        {
            while (true)
            {
                _arrivals.Wait(stopping);
                GenerationJob? job;
                lock (_lock)
                {
                    job = _waiting.First?.Value;
                    if (job is null) continue;          // a cancelled job left its arrival behind
                    _waiting.RemoveFirst();
                    _running = job;
                }
                // The log lines of a job carry the id of the request that made it, as the request's own lines do.
                using var scope = logger.BeginScope("RequestId:{RequestId} JobId:{JobId}", job.RequestId, job.Id);
                try
                {
                    Run(job, stopping);
                }
                finally
                {
                    lock (_lock) _running = null;
                    Remember(job);
                    JobFinished?.Invoke(job);
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        finally
        {
            FailWaitingJobs();
            // Under MPI the workers wait for the lead's next job; from this thread, the only one that talks to them.
            pipeline.StopWorkers();
        }
    }

    void Run(GenerationJob job, CancellationToken stopping)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(job.CancellationToken, stopping);
        var started = DateTime.UtcNow;
        try
        {
            linked.Token.ThrowIfCancellationRequested();
            job.Start();
            // The job first (its status shows the step), then the queue's listeners, which may hold the run there.
            var outcome = pipeline.Generate(job.Request, GenerationObserver.Combine(job, new StepCallback(step => StepFinished?.Invoke(job, step))), linked.Token);
            linked.Token.ThrowIfCancellationRequested();
            job.Succeed(output.Save(job.Id, outcome.Images), outcome.Timings);
            logger.LogInformation("job {Id} succeeded in {Seconds:F3} s", job.Id, outcome.Timings.TotalSeconds);
            lock (_lock) _averageSeconds = 0.7 * _averageSeconds + 0.3 * (DateTime.UtcNow - started).TotalSeconds;
        }
        catch (OperationCanceledException)
        {
            job.Cancelled(stopping.IsCancellationRequested ? "the server stopped while this job ran" : "cancelled");
        }
        catch (Sd35Exception e)
        {
            job.Fail(e.Message);
        }
        catch (Exception e)
        {
            logger.LogError(e, "job {Id} failed", job.Id);
            job.Fail($"internal error: {e.Message}");
        }
    }

    void FailWaitingJobs()
    {
        List<GenerationJob> left;
        lock (_lock)
        {
            _stopping = true;
            left = [.. _waiting];
            _waiting.Clear();
        }
        foreach (var job in left) job.Fail("the server stopped before this job ran");
    }

    /// <summary>Keeps the last <see cref="ServerOptions.KeepJobs"/> finished jobs; older ones are forgotten with their files.</summary>
    void Remember(GenerationJob job)
    {
        _finished.Enqueue(job);
        while (_finished.Count > options.KeepJobs && _finished.TryDequeue(out var old))
        {
            _jobs.TryRemove(old.Id, out _);
            old.Forget();
            output.Delete(old.Id);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        lock (_lock) _stopping = true;
        await base.StopAsync(cancellationToken);
        FailWaitingJobs();
    }
}
