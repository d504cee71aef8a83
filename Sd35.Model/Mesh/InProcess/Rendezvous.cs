using System.Diagnostics;
using static TorchSharp.torch;

namespace Sd35.Mesh.InProcess;

/// <summary>What one rank put into one collective call: the call's description and its tensor.</summary>
sealed record Deposit(string Op, string Args, Tensor Tensor, int To = -1, int From = -1)
{
    public string Call => Args.Length == 0 ? Op : $"{Op}({Args})";

    /// <summary>The deposited tensor's size, taken when deposited (a receiver may free a sent snapshot before the sender finishes).</summary>
    public long MessageBytes { get; } = Tensor.numel() * Tensor.element_size();
    /// <summary>Taken when deposited: a receiver may dispose a sent snapshot before the sender records its traffic.</summary>
    public long[] Shape { get; } = Tensor.shape;
    public string DType { get; } = Tensor.dtype.ToString();
}

/// <summary>
/// The meeting point of one process group: every collective is a numbered round in which each rank deposits a
/// tensor, waits until all have deposited, reads what it needs from the others' deposits (copying onto its own
/// device), and, for a blocking collective, waits until every rank has read before it returns, so the tensor it
/// deposited stays valid and unchanged while others copy it: no rank ever keeps a reference to another's memory.
/// Rounds are keyed by sequence number, so a posted exchange may stay open while later collectives run.
/// Waits give up when the communicator is aborted, when a rank that is still needed has finished its program,
/// or after the timeout; the error names the call and the ranks it was waiting for.
/// </summary>
sealed class Rendezvous(InProcessCommunicator owner, string label, DeviceId[] members)
{
    readonly object _gate = new();
    readonly Dictionary<long, Round> _rounds = new();

    public string Label { get; } = label;
    public DeviceId[] Members { get; } = members;

    /// <summary>The members as plain numbers, for the instrumentation's collective samples.</summary>
    public int[] MemberIds { get; } = members.Select(m => m.Value).ToArray();
    public int Size => Members.Length;

    sealed class Round(int size)
    {
        public readonly Deposit?[] Deposits = new Deposit?[size];
        public readonly bool[] Done = new bool[size];
        public int Arrived;
        public int DoneCount;
        /// <summary>Ranks between <see cref="AwaitAll"/> and <see cref="EndRead"/>, copying from the deposits.</summary>
        public int Reading;
        public bool Validated;
    }

    /// <summary>Deposits this rank's part of round <paramref name="seq"/>; never blocks.</summary>
    public void Post(long seq, int rank, Deposit deposit)
    {
        Exception? failure;
        lock (_gate)
        {
            failure = owner.AbortedError(Describe(seq, deposit.Call));
            if (failure is null)
            {
                if (!_rounds.TryGetValue(seq, out var round)) _rounds[seq] = round = new Round(Size);
                round.Deposits[rank] = deposit;
                round.Arrived++;
                Monitor.PulseAll(_gate);
            }
        }
        if (failure is not null) Fail(failure);
    }

    /// <summary>
    /// Blocks until every rank has deposited round <paramref name="seq"/>, checks that they made the same call
    /// (<paramref name="check"/> returns a problem or null), and returns the deposits for reading. The caller must
    /// call <see cref="EndRead"/> when it has copied what it needs.
    /// </summary>
    public Deposit[] AwaitAll(long seq, int rank, Func<Deposit[], string?> check)
    {
        Exception? failure;
        lock (_gate)
        {
            var round = _rounds[seq];
            string call = round.Deposits[rank]!.Call;
            failure = WaitLocked(seq, call, round, r => round.Deposits[r] is not null, "deposit");
            if (failure is null && !round.Validated)
            {
                var problem = Disagreement(round) ?? check(round.Deposits!);
                // Named after rank 0's call, so every rank that detects the problem words it the same way.
                if (problem is not null) failure = new CollectiveMismatchException($"{Describe(seq, round.Deposits[0]!.Call)}: {problem}");
                else round.Validated = true;
            }
            if (failure is null)
            {
                round.Reading++;
                return round.Deposits!;
            }
        }
        return Fail<Deposit[]>(failure);
    }

    public void EndRead(long seq)
    {
        lock (_gate)
        {
            _rounds[seq].Reading--;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// Marks this rank done with round <paramref name="seq"/>. With <paramref name="barrier"/>, blocks until every
    /// rank is done, so that the caller's deposit is no longer read by anyone when it returns.
    /// </summary>
    public void Complete(long seq, int rank, bool barrier)
    {
        Exception? failure = null;
        lock (_gate)
        {
            var round = _rounds[seq];
            round.Done[rank] = true;
            if (++round.DoneCount == Size) _rounds.Remove(seq);
            Monitor.PulseAll(_gate);
            if (barrier) failure = WaitLocked(seq, round.Deposits[rank]!.Call, round, r => round.Done[r], "finish reading");
        }
        if (failure is not null) Fail(failure);
    }

    /// <summary>
    /// On a failed collective, the caller's deposit may still be being copied by another rank. Aborts the run
    /// (so no one starts reading), then waits until no one is reading round <paramref name="seq"/>, before the
    /// caller unwinds and its tensors are freed.
    /// </summary>
    public void AbandonRound(long seq, Exception failure)
    {
        owner.Abort(failure);
        lock (_gate)
            while (_rounds.TryGetValue(seq, out var round) && round.Reading > 0)
                Monitor.Wait(_gate, 100);
    }

    /// <summary>Forgets every round: a new run starts (see <see cref="InProcessCommunicator.BeginRun"/>).</summary>
    public void Reset()
    {
        lock (_gate) _rounds.Clear();
    }

    /// <summary>Wakes every waiter so it re-checks abort and finished ranks. Never called with a rendezvous lock held.</summary>
    public void Wake()
    {
        lock (_gate) Monitor.PulseAll(_gate);
    }

    Exception? WaitLocked(long seq, string call, Round round, Func<int, bool> ready, string what)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            // Abort first, even when everyone is there: after an abort a depositor may already have unwound and
            // freed its tensor, so nobody may start reading.
            var aborted = owner.AbortedError(Describe(seq, call));
            if (aborted is not null) return aborted;
            var missing = Enumerable.Range(0, Size).Where(r => !ready(r)).ToArray();
            if (missing.Length == 0) return null;
            var gone = missing.Where(r => owner.HasFinished(Members[r])).ToArray();
            if (gone.Length > 0)
                return new CollectiveMismatchException(
                    $"{Describe(seq, call)}: {RankList(gone)} finished its program without taking part (missing or extra collective call?)");
            var left = owner.Timeout - clock.Elapsed;
            if (left <= TimeSpan.Zero)
                return new CollectiveTimeoutException(
                    $"{Describe(seq, call)}: timed out after {owner.Timeout.TotalSeconds:0.###} s waiting for {RankList(missing)} to {what}; " +
                    $"ready: {(missing.Length == Size ? "none" : RankList(Enumerable.Range(0, Size).Where(ready)))}");
            // Pulses bring progress; the slice bounds how late a finished rank or an abort can be noticed.
            Monitor.Wait(_gate, left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
        }
    }

    string? Disagreement(Round round)
    {
        var first = round.Deposits[0]!;
        for (int r = 1; r < Size; r++)
        {
            var d = round.Deposits[r]!;
            if (d.Op != first.Op || d.Args != first.Args)
                return $"ranks disagree on the call: rank 0 (device {Members[0]}) made {first.Call}, rank {r} (device {Members[r]}) made {d.Call}";
        }
        return null;
    }

    void Fail(Exception failure) => Fail<int>(failure);

    T Fail<T>(Exception failure)
    {
        // Outside the lock: aborting wakes every rendezvous, taking their locks.
        owner.Abort(failure);
        throw failure;
    }

    string Describe(long seq, string call) => $"{call} #{seq} on group '{Label}' [devices {string.Join(",", Members)}]";

    string RankList(IEnumerable<int> ranks) =>
        string.Join(", ", ranks.Select(r => $"rank {r} (device {Members[r]})"));
}
