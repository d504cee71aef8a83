namespace Sd35.Server.Jobs;

/// <summary>A job that ended without an image: cancelled (409) or failed (500).</summary>
public sealed record UnfinishedJob(GenerationJob Job, JobSnapshot Last)
{
    public int StatusCode => Last.Status == JobStatus.Cancelled ? StatusCodes.Status409Conflict : StatusCodes.Status500InternalServerError;
    public string Message => $"job {Job.Id} {(Last.Status == JobStatus.Cancelled ? "was cancelled" : "failed")}: {Last.Error ?? Last.Status.ToString()}";
}

/// <summary>How an endpoint that answers with its jobs' images waits for them.</summary>
public static class JobWaits
{
    /// <summary>
    /// Waits for <paramref name="jobs"/> in order: null once all succeeded, else the first that did not. On every
    /// other exit (one did not succeed, the client left — <see cref="OperationCanceledException"/> — or anything
    /// thrown) the jobs not yet finished are cancelled: nobody will read their images.
    /// </summary>
    public static async Task<UnfinishedJob?> AwaitAllOrCancel(this GenerationQueue queue, IReadOnlyList<GenerationJob> jobs, CancellationToken cancellationToken)
    {
        bool allSucceeded = false;
        try
        {
            foreach (var job in jobs)
            {
                JobSnapshot last = job.Snapshot();
                await foreach (var snapshot in job.Updates(() => queue.PositionOf(job), cancellationToken)) last = snapshot;
                if (last.Status != JobStatus.Succeeded || job.PngPath is null) return new UnfinishedJob(job, last);
            }
            allSucceeded = true;
            return null;
        }
        finally
        {
            if (!allSucceeded) foreach (var job in jobs) queue.Cancel(job);
        }
    }
}
