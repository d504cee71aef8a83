namespace Sd35.Mesh;

/// <summary>
/// A collective could not complete because another rank of the run failed (or the run was aborted). The failing
/// rank's own exception is <see cref="Exception.InnerException"/>; the runner reports that one, not this.
/// </summary>
public sealed class CollectiveAbortedException(string message, Exception? cause) : OperationCanceledException(message, cause);

/// <summary>A collective waited longer than the configured limit; the message names the call and the missing ranks.</summary>
public sealed class CollectiveTimeoutException(string message) : TimeoutException(message);

/// <summary>
/// The ranks of a group disagree about a collective (different op, dimension, root, dtype or shape, an
/// inconsistent send/receive pattern), or a rank finished its program while others still waited for it.
/// </summary>
public sealed class CollectiveMismatchException(string message) : InvalidOperationException(message);

/// <summary>
/// Every rank of a run stops at the same point because they agreed to (a collective decided it, e.g. a cancelled
/// generation at a step boundary): not a failure. No rank is left inside a collective, so a multi-process launcher
/// passes it to the caller instead of ending the job.
/// </summary>
public class AgreedStopException(string message) : OperationCanceledException(message), IRaisedByEveryRank
{
    public bool ByEveryRank => true;
}

/// <summary>
/// An error that may be raised by every rank at the same point of the program, from values every rank holds alike
/// (so none is left inside a collective its peers never join). When <see cref="ByEveryRank"/> is true a
/// multi-process launcher passes it to the caller like an <see cref="AgreedStopException"/>: the generation ends,
/// the job goes on.
/// </summary>
public interface IRaisedByEveryRank
{
    bool ByEveryRank { get; }
}
