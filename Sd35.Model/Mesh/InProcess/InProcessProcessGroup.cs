using TorchSharp;
using static TorchSharp.torch;
using Sd35.Profiling;

namespace Sd35.Mesh.InProcess;

/// <summary>
/// One rank's handle on a <see cref="Rendezvous"/>: each collective is a real exchange between rank threads.
/// Every result is fresh memory on this rank's device (copied with <c>.to(device)</c>); reductions add in rank
/// order (in fp32 for 16-bit floats), so every rank gets bit-identical sums. Traffic is recorded per call.
/// </summary>
sealed class InProcessProcessGroup(Rendezvous rendezvous, int rank, Device device, CollectiveStats stats) : IProcessGroup
{
    long _next;

    public int Rank { get; } = rank;

    /// <summary>Back to the first collective, for the next run of the session (every rank's handle alike).</summary>
    internal void Reset() => _next = 0;
    public int Size => rendezvous.Size;

    public Tensor AllGather(Tensor local, long dim)
    {
        long d = NormalizeDim(local, dim);
        return Blocking(new Deposit("AllGather", $"dim {d}", local), all => SameExcept(all, d), all =>
        {
            var parts = all.Select((p, r) => r == Rank ? local : OnMyDevice(p.Tensor)).ToArray();
            long received = Others(all).Sum(p => Bytes(p.Tensor));
            return (cat(parts, d), Bytes(local) * (Size - 1), received);
        });
    }

    public Tensor ReduceScatter(Tensor local, long dim)
    {
        long d = NormalizeDim(local, dim);
        if (local.shape[d] % Size != 0)
            throw new ArgumentException($"ReduceScatter: dimension {d} of size {local.shape[d]} does not split into {Size} equal chunks");
        long chunk = local.shape[d] / Size;
        return Blocking(new Deposit("ReduceScatter", $"dim {d}", local), SameShape, all =>
        {
            var mine = SumInRankOrder(all.Select(p => p.Tensor.narrow(d, Rank * chunk, chunk)));
            return (mine, Bytes(local) / Size * (Size - 1), Bytes(local) / Size * (Size - 1));
        });
    }

    /// <summary>
    /// A reduce-scatter of the flattened tensor (each rank sums its piece) followed by an all-gather of the sums:
    /// every element is added once, in rank order, and each rank moves 2·(n−1)/n of the tensor, as a ring would.
    /// </summary>
    public Tensor AllReduce(Tensor local)
    {
        using var scope = NewDisposeScope();
        var probe = Begin(new Deposit("AllReduce", "", local));
        var pieceSizes = PieceSizes(local.numel());
        long offset = pieceSizes.Take(Rank).Sum();
        long sent = 0, received = 0;
        var piece = Blocking(new Deposit("AllReduce", "reduce", local), SameShape, all =>
        {
            var sum = SumInRankOrder(all.Select(p => p.Tensor.flatten().narrow(0, offset, pieceSizes[Rank])));
            long pieceBytes = Bytes(sum);
            sent += Bytes(local) - PieceBytes(local, pieceSizes[Rank]);
            received += pieceBytes * (Size - 1);
            return (sum, 0, 0);
        }, record: false);
        var full = Blocking(new Deposit("AllReduce", "gather", piece), _ => null, all =>
        {
            var parts = all.Select((p, r) => r == Rank ? piece : OnMyDevice(p.Tensor)).ToArray();
            sent += Bytes(piece) * (Size - 1);
            received += Others(all).Sum(p => Bytes(p.Tensor));
            return (cat(parts, 0).view(local.shape), 0, 0);
        }, record: false);
        stats.Record("AllReduce", sent, received);
        probe.End(rendezvous.MemberIds, Bytes(local), sent, received, isAsync: false);
        return full.MoveToOuterDisposeScope();
    }

    public Tensor AllToAll(Tensor local, long scatterDim, long gatherDim)
    {
        long s = NormalizeDim(local, scatterDim), g = NormalizeDim(local, gatherDim);
        if (local.shape[s] % Size != 0)
            throw new ArgumentException($"AllToAll: scatter dimension {s} of size {local.shape[s]} does not split into {Size} equal chunks");
        long chunk = local.shape[s] / Size;
        return Blocking(new Deposit("AllToAll", $"scatter {s}, gather {g}", local), SameShape, all =>
        {
            var parts = all.Select((p, r) => r == Rank ? local.narrow(s, Rank * chunk, chunk) : OnMyDevice(p.Tensor.narrow(s, Rank * chunk, chunk))).ToArray();
            long pieceBytes = Bytes(local) / Size;
            return (cat(parts, g), pieceBytes * (Size - 1), pieceBytes * (Size - 1));
        });
    }


    public Tensor Broadcast(Tensor local, int root)
    {
        CheckRank(root, nameof(root));
        return Blocking(new Deposit("Broadcast", $"root {root}", local), all => SameDtype(all), all =>
            Rank == root
                ? (local.alias(), Bytes(local) * (Size - 1), 0)
                : (all[root].Tensor.to(Target(all[root].Tensor), copy: true), 0, Bytes(all[root].Tensor)));
    }

    /// <summary>
    /// The sender posts a private snapshot of its tensor and moves on; the receiver adopts the snapshot (or its
    /// copy on another device). No rank waits for a reader, so any number of exchanges may be open at once.
    /// </summary>
    public IPendingTensor StartSendReceive(Tensor local, int toRank, int fromRank)
    {
        CheckRank(toRank, nameof(toRank));
        CheckRank(fromRank, nameof(fromRank));
        long seq = _next++;
        Tensor? snapshot = null;
        if (toRank != Rank)
        {
            // Detached from the sender's dispose scope: the receiver owns it once it arrives.
            snapshot = local.clone().DetachFromDisposeScope();
        }
        var deposit = new Deposit("SendReceive", "", snapshot ?? local, toRank, fromRank);
        var probe = Begin(deposit);
        rendezvous.Post(seq, Rank, deposit);
        return new Pending(this, seq, local, toRank, fromRank, probe);
    }

    sealed class Pending(InProcessProcessGroup group, long seq, Tensor local, int toRank, int fromRank, Instrumentation.CollectiveProbe probe) : IPendingTensor
    {
        bool _waited;

        public Tensor Wait()
        {
            if (_waited) throw new InvalidOperationException("Wait was already called on this exchange");
            _waited = true;
            return group.Finish(seq, group.CheckPermutation, all =>
            {
                long sent = toRank == group.Rank ? 0 : Bytes(local);
                if (fromRank == group.Rank) return (local.alias(), sent, 0);
                var snapshot = all[fromRank].Tensor;
                // A new handle created on this thread, so it joins this rank's dispose scope like any op result.
                var result = SameDevice(snapshot.device, group.Device) ? snapshot.alias() : snapshot.to(group.Device);
                snapshot.Dispose();
                return (result, sent, Bytes(result));
            }, barrier: false, record: true, probe);
        }

        /// <summary>
        /// Without <see cref="Wait"/> the exchange is abandoned: nothing blocks (this runs while unwinding from an
        /// error, too), the other ranks are unaffected, and what was sent to this rank is left to the GC.
        /// </summary>
        public void Dispose() => _waited = true;
    }

    internal Device Device => device;

    Tensor Blocking(Deposit mine, Func<Deposit[], string?> check, Func<Deposit[], (Tensor, long, long)> compute, bool record = true)
    {
        // AllReduce's two inner rounds (record: false) are one collective to the instrumentation; it reports them itself.
        var probe = record ? Begin(mine) : default;
        long seq = _next++;
        rendezvous.Post(seq, Rank, mine);
        return Finish(seq, check, compute, barrier: true, record, probe);
    }

    /// <summary>
    /// Tells the rank thread's instrumentation sink (a step trace, the cost model) about the call before this rank
    /// joins it, so a checker can stop a divergent rank first.
    /// </summary>
    Instrumentation.CollectiveProbe Begin(Deposit deposit) => Instrumentation.BeginCollective(rendezvous.Label, deposit.Op, deposit.Shape, deposit.DType);

    Tensor Finish(long seq, Func<Deposit[], string?> check, Func<Deposit[], (Tensor Result, long Sent, long Received)> compute, bool barrier, bool record,
        Instrumentation.CollectiveProbe probe)
    {
        try
        {
            var all = rendezvous.AwaitAll(seq, Rank, check);
            Tensor result;
            long sent, received;
            try
            {
                using var scope = NewDisposeScope();
                (result, sent, received) = compute(all);
                result.MoveToOuterDisposeScope();
            }
            finally
            {
                rendezvous.EndRead(seq);
            }
            rendezvous.Complete(seq, Rank, barrier);
            if (record)
            {
                stats.Record(all[Rank].Op, sent, received);
                probe.End(rendezvous.MemberIds, all[Rank].MessageBytes, sent, received, isAsync: !barrier);
            }
            return result;
        }
        catch (Exception failure)
        {
            // Our deposit may still be read by a rank that got past AwaitAll; let it finish before unwinding.
            rendezvous.AbandonRound(seq, failure);
            throw;
        }
    }

    /// <summary>Sum of tensors on any device, added in the given (rank) order on this device; a fresh tensor.</summary>
    Tensor SumInRankOrder(IEnumerable<Tensor> parts) => CollectiveArithmetic.SumInRankOrder(parts, OnMyDevice);

    Tensor OnMyDevice(Tensor t) => t.to(Target(t));

    /// <summary>This rank's device; in a shape-only run, host metadata sent from the CPU stays data on the CPU.</summary>
    Device Target(Tensor t) => ShapeOnly.Is(device) && t.device_type == DeviceType.CPU ? CPU : device;

    string? CheckPermutation(Deposit[] all)
    {
        for (int r = 0; r < all.Length; r++)
        {
            int to = all[r].To;
            if (all[to].From != r)
                return $"rank {r} sends to rank {to}, but rank {to} receives from rank {all[to].From}";
        }
        return null;
    }

    static string? SameShape(Deposit[] all) =>
        SameDtype(all) ?? (all.Any(p => !p.Tensor.shape.SequenceEqual(all[0].Tensor.shape))
            ? $"shapes differ: {string.Join(" vs ", all.Select(p => Shape(p.Tensor)))}" : null);

    static string? SameExcept(Deposit[] all, long dim) =>
        SameDtype(all) ?? (all.Any(p => p.Tensor.dim() != all[0].Tensor.dim() ||
                                       Enumerable.Range(0, (int)p.Tensor.dim()).Any(i => i != dim && p.Tensor.shape[i] != all[0].Tensor.shape[i]))
            ? $"shapes differ outside dimension {dim}: {string.Join(" vs ", all.Select(p => Shape(p.Tensor)))}" : null);

    static string? SameDtype(Deposit[] all) =>
        all.Any(p => p.Tensor.dtype != all[0].Tensor.dtype) ? $"dtypes differ: {string.Join(" vs ", all.Select(p => p.Tensor.dtype))}" : null;

    IEnumerable<Deposit> Others(Deposit[] all) => all.Where((_, r) => r != Rank);

    long[] PieceSizes(long numel) => CollectiveArithmetic.PieceSizes(numel, Size);

    static long PieceBytes(Tensor t, long elements) => elements * t.element_size();

    internal static long Bytes(Tensor t) => CollectiveArithmetic.Bytes(t);

    static string Shape(Tensor t) => CollectiveArithmetic.Shape(t);

    static long NormalizeDim(Tensor t, long dim) => CollectiveArithmetic.NormalizeDim(t, dim);

    void CheckRank(int r, string name)
    {
        if (r < 0 || r >= Size) throw new ArgumentOutOfRangeException(name, r, $"group '{rendezvous.Label}' has ranks 0..{Size - 1}");
    }

    internal static bool SameDevice(Device a, Device b) =>
        a.type == b.type && (a.type == DeviceType.CPU || Math.Max(a.index, 0) == Math.Max(b.index, 0));
}
