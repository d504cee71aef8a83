namespace Sd35.Mesh;

/// <summary>
/// What a failed mesh run tells a user. The runner rethrows the failing rank's own exception (so an input error
/// keeps its type and its culprit); its <see cref="Exception.Data"/> carries the rank that threw and the first
/// collective the other ranks were released from, and <see cref="Describe"/> turns them into one line.
/// </summary>
public static class MeshFailure
{
    public const string RankKey = "MeshRank";
    public const string CollectiveKey = "MeshCollective";

    /// <summary>Keeps the first collective a rank was released from because of <paramref name="cause"/>.</summary>
    public static void RecordInterruptedCollective(Exception cause, string call)
    {
        lock (cause)
            if (!cause.Data.Contains(CollectiveKey)) cause.Data[CollectiveKey] = call;
    }

    public static int? RankOf(Exception error) => error.Data[RankKey] as int?;

    public static string? InterruptedCollectiveOf(Exception error)
    {
        lock (error) return error.Data[CollectiveKey] as string;
    }

    /// <summary>
    /// "mesh rank 6 failed while the other ranks waited in AllGather(dim 0) #0 on group 'axis1' [devices 0,1]:
    /// InvalidOperationException: rank 6 broke"; an exception from outside a mesh run is only its type and message.
    /// A timeout or a mismatch already names its collective and ranks in its message.
    /// </summary>
    public static string Describe(Exception error)
    {
        var what = $"{error.GetType().Name}: {error.Message}";
        if (RankOf(error) is not { } rank) return what;
        var collective = InterruptedCollectiveOf(error);
        return error is CollectiveTimeoutException or CollectiveMismatchException || collective is null
            ? $"mesh rank {rank} failed: {what}"
            : $"mesh rank {rank} failed while the other ranks waited in {collective}: {what}";
    }
}
