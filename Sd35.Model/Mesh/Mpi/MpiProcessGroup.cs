using Sd35.Profiling;
using TorchSharp;
using static Sd35.Mesh.CollectiveArithmetic;
using static TorchSharp.torch;

namespace Sd35.Mesh.Mpi;

/// <summary>
/// One rank's handle on an MPI sub-communicator. Data moves as raw bytes straight from and into the tensors' CPU
/// memory (a contiguous CPU tensor is sent without a copy; received data lands in the result's storage). MPI's own
/// reduction operators are not used: their summation order is the library's choice, so ReduceScatter and AllReduce
/// exchange the pieces (MPI_Alltoall/-v) and add them here in rank order with <see cref="CollectiveArithmetic"/>, which
/// makes every sum bit-identical to the in-process backend's (bfloat16 and float16 included, accumulated in fp32).
/// Byte accounting is the in-process backend's, so the two backends' <see cref="CollectiveStats"/> agree.
/// Tensors on an accelerator are staged through the CPU (an MPI built CUDA-aware could take device pointers).
/// Every received message lands in a buffer from <see cref="Instrumentation.ReceiveBuffer"/>: in a traced step, one the
/// step trace placed during the capture for that collective of the step program; otherwise a new one.
/// Every collective reports to the thread's instrumentation sink (<see cref="Instrumentation"/>) as in-process: before
/// any MPI call (so a step-trace checker stops a divergent rank first) and once done, with the same byte counts.
/// </summary>
sealed unsafe class MpiProcessGroup(int comm, string label, IReadOnlyList<int> members, int rank, Device device, CollectiveStats stats, bool checkCalls)
    : IProcessGroup
{
    const int MaxDims = 12;
    readonly string _description = $"group '{label}' [devices {string.Join(",", members)}]";
    long _exchanges;

    public int Rank { get; } = rank;
    public int Size { get; } = members.Count;

    public Tensor AllGather(Tensor local, long dim)
    {
        long d = NormalizeDim(local, dim);
        var probe = Begin("AllGather", local);
        Verify(CollectiveCall.Of("AllGather", local, d), CollectiveCall.SameExcept(d));
        using var scope = NewDisposeScope();
        var host = OnHost(local);
        long mine = local.shape[d];
        var extents = new long[Size];
        fixed (long* p = extents) Call(MpiNative.Allgather(&mine, 1, MpiNative.Long, p, 1, MpiNative.Long, comm), "MPI_Allgather");

        long elementSize = local.element_size();
        var shapes = extents.Select(e => With(local.shape, d, e)).ToArray();
        var counts = shapes.Select(s => checked((int)(Numel(s) * elementSize))).ToArray();
        var displacements = Offsets(counts);
        var gathered = Instrumentation.ReceiveBuffer([shapes.Sum(Numel)], local.dtype);
        fixed (int* c = counts, o = displacements)
        fixed (byte* send = host.bytes, receive = gathered.bytes)
            Call(MpiNative.Allgatherv(send, counts[Rank], MpiNative.Byte, receive, c, o, MpiNative.Byte, comm), "MPI_Allgatherv");

        // Blocks laid end to end are already the concatenation when nothing precedes dimension d.
        Tensor result = Numel(local.shape.Take((int)d)) == 1
            ? gathered.view(With(local.shape, d, extents.Sum()))
            : cat(shapes.Select((s, r) => gathered.narrow(0, displacements[r] / elementSize, Numel(s)).view(s)).ToArray(), d);
        Record(probe, "AllGather", Bytes(local), Bytes(local) * (Size - 1), counts.Where((_, r) => r != Rank).Sum(c => (long)c));
        return OnMyDevice(result).MoveToOuterDisposeScope();
    }

    public Tensor ReduceScatter(Tensor local, long dim)
    {
        long d = NormalizeDim(local, dim);
        if (local.shape[d] % Size != 0)
            throw new ArgumentException($"ReduceScatter: dimension {d} of size {local.shape[d]} does not split into {Size} equal chunks");
        var probe = Begin("ReduceScatter", local);
        Verify(CollectiveCall.Of("ReduceScatter", local, d), CollectiveCall.SameShape);
        using var scope = NewDisposeScope();
        long chunk = local.shape[d] / Size;
        var received = ExchangeChunks(local, d);
        var mine = SumInRankOrder(Enumerable.Range(0, Size).Select(k => received[k]), t => t).view(With(local.shape, d, chunk));
        long moved = Bytes(local) / Size * (Size - 1);
        Record(probe, "ReduceScatter", Bytes(local), moved, moved);
        return OnMyDevice(mine).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A reduce-scatter of the flattened tensor (MPI_Alltoallv of the pieces, summed here in rank order) and an
    /// all-gather of the sums (MPI_Allgatherv): the in-process backend's pieces, order and byte counts.
    /// </summary>
    public Tensor AllReduce(Tensor local)
    {
        var probe = Begin("AllReduce", local);
        Verify(CollectiveCall.Of("AllReduce", local), CollectiveCall.SameShape);
        using var scope = NewDisposeScope();
        var flat = OnHost(local).view(-1);
        long elementSize = local.element_size();
        var pieceSizes = PieceSizes(local.numel(), Size);
        var pieceBytes = pieceSizes.Select(s => checked((int)(s * elementSize))).ToArray();
        var pieceOffsets = Offsets(pieceBytes);
        int myBytes = pieceBytes[Rank];
        var fromEach = Enumerable.Repeat(myBytes, Size).ToArray();
        var fromEachOffsets = Offsets(fromEach);

        var pieces = Instrumentation.ReceiveBuffer([Size, pieceSizes[Rank]], local.dtype);
        fixed (int* sc = pieceBytes, so = pieceOffsets, rc = fromEach, ro = fromEachOffsets)
        fixed (byte* send = flat.bytes, receive = pieces.bytes)
            Call(MpiNative.Alltoallv(send, sc, so, MpiNative.Byte, receive, rc, ro, MpiNative.Byte, comm), "MPI_Alltoallv");
        var sum = SumInRankOrder(Enumerable.Range(0, Size).Select(k => pieces[k]), t => t).contiguous();

        var full = Instrumentation.ReceiveBuffer([local.numel()], local.dtype);
        fixed (int* c = pieceBytes, o = pieceOffsets)
        fixed (byte* send = sum.bytes, receive = full.bytes)
            Call(MpiNative.Allgatherv(send, myBytes, MpiNative.Byte, receive, c, o, MpiNative.Byte, comm), "MPI_Allgatherv");

        long others = Bytes(local) - myBytes;
        Record(probe, "AllReduce", Bytes(local), others + (long)myBytes * (Size - 1), (long)myBytes * (Size - 1) + others);
        return OnMyDevice(full.view(local.shape)).MoveToOuterDisposeScope();
    }

    public Tensor AllToAll(Tensor local, long scatterDim, long gatherDim)
    {
        long s = NormalizeDim(local, scatterDim), g = NormalizeDim(local, gatherDim);
        if (local.shape[s] % Size != 0)
            throw new ArgumentException($"AllToAll: scatter dimension {s} of size {local.shape[s]} does not split into {Size} equal chunks");
        var probe = Begin("AllToAll", local);
        Verify(CollectiveCall.Of("AllToAll", local, s, g), CollectiveCall.SameShape);
        using var scope = NewDisposeScope();
        var blockShape = With(local.shape, s, local.shape[s] / Size);
        var received = ExchangeChunks(local, s);
        var result = cat(Enumerable.Range(0, Size).Select(k => received[k].view(blockShape)).ToArray(), g);
        long moved = Bytes(local) / Size * (Size - 1);
        Record(probe, "AllToAll", Bytes(local), moved, moved);
        return OnMyDevice(result).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Splits <paramref name="local"/> into Size chunks along <paramref name="d"/>, sends chunk j to rank j and returns
    /// the received chunks stacked as [Size, before, chunk, after] (row k from rank k). The chunks are made contiguous
    /// by one permuted copy; along the leading dimension they already are, and nothing is copied.
    /// </summary>
    Tensor ExchangeChunks(Tensor local, long d)
    {
        long before = Numel(local.shape.Take((int)d)), after = Numel(local.shape.Skip((int)d + 1));
        long chunk = local.shape[d] / Size;
        var send = OnHost(local).view(before, Size, chunk, after).permute(1, 0, 2, 3).contiguous();
        var received = Instrumentation.ReceiveBuffer([Size, before, chunk, after], local.dtype);
        int blockBytes = checked((int)(before * chunk * after * local.element_size()));
        fixed (byte* sp = send.bytes, rp = received.bytes)
            Call(MpiNative.Alltoall(sp, blockBytes, MpiNative.Byte, rp, blockBytes, MpiNative.Byte, comm), "MPI_Alltoall");
        return received;
    }


    /// <summary>The root's shape and dtype go first (other ranks' tensors may have any shape), then its data.</summary>
    public Tensor Broadcast(Tensor local, int root)
    {
        CheckRank(root, nameof(root));
        var probe = Begin("Broadcast", local);
        Verify(CollectiveCall.Of("Broadcast", local, root), CollectiveCall.SameDtype);
        var header = Header(local);
        fixed (long* h = header) Call(MpiNative.Bcast(h, header.Length, MpiNative.Long, root, comm), "MPI_Bcast");
        if (Rank == root)
        {
            using (var scope = NewDisposeScope())
            {
                var host = OnHost(local);
                fixed (byte* p = host.bytes) Call(MpiNative.Bcast(p, ByteCount(host), MpiNative.Byte, root, comm), "MPI_Bcast");
            }
            Record(probe, "Broadcast", Bytes(local), Bytes(local) * (Size - 1), 0);
            return local.alias();
        }
        using (var scope = NewDisposeScope())
        {
            var result = FromHeader(header);
            fixed (byte* p = result.bytes) Call(MpiNative.Bcast(p, ByteCount(result), MpiNative.Byte, root, comm), "MPI_Bcast");
            Record(probe, "Broadcast", Bytes(local), 0, Bytes(result));
            return OnMyDevice(result).MoveToOuterDisposeScope();
        }
    }

    /// <summary>
    /// Shapes may differ per rank, so the partners first swap shape headers (MPI_Sendrecv, a few bytes); then the data
    /// moves with MPI_Isend/MPI_Irecv straight into the result's storage while the caller computes. Each exchange has
    /// its own tags (every rank numbers its exchanges in the same order), so any number may be open at once.
    /// </summary>
    public IPendingTensor StartSendReceive(Tensor local, int toRank, int fromRank)
    {
        CheckRank(toRank, nameof(toRank));
        CheckRank(fromRank, nameof(fromRank));
        var probe = Begin("SendReceive", local);
        Verify(CollectiveCall.Of("SendReceive", local, toRank, fromRank), CollectiveCall.Permutation);
        if (toRank == Rank || fromRank == Rank)
        {
            if (toRank != fromRank)
                throw new CollectiveMismatchException($"SendReceive on {_description}: rank {Rank} sends to rank {toRank} but receives from rank {fromRank}; an exchange with oneself must do both");
            Record(probe, "SendReceive", Bytes(local), 0, 0, isAsync: true); // counted, as in-process, though nothing crosses
            return new CompletedExchange(local.alias());
        }
        int tag = (int)(_exchanges++ % 8192) * 2;
        var sendHeader = Header(local);
        var receiveHeader = new long[sendHeader.Length];
        fixed (long* s = sendHeader, r = receiveHeader)
            Call(MpiNative.Sendrecv(s, sendHeader.Length, MpiNative.Long, toRank, tag, r, receiveHeader.Length, MpiNative.Long, fromRank, tag, comm, MpiNative.StatusIgnore), "MPI_Sendrecv");

        // Both buffers live outside the caller's dispose scopes until the exchange is done.
        var outgoing = OnHost(local);
        outgoing = ReferenceEquals(outgoing, local) ? local.alias().DetachFromDisposeScope() : outgoing.DetachFromDisposeScope();
        var incoming = FromHeader(receiveHeader).DetachFromDisposeScope();
        var requests = new int[2];
        fixed (byte* rp = incoming.bytes) Call(MpiNative.Irecv(rp, ByteCount(incoming), MpiNative.Byte, fromRank, tag + 1, comm, out requests[0]), "MPI_Irecv");
        fixed (byte* sp = outgoing.bytes) Call(MpiNative.Isend(sp, ByteCount(outgoing), MpiNative.Byte, toRank, tag + 1, comm, out requests[1]), "MPI_Isend");
        return new Pending(this, requests, outgoing, incoming, probe, Bytes(local));
    }

    sealed class Pending(MpiProcessGroup group, int[] requests, Tensor outgoing, Tensor incoming, Instrumentation.CollectiveProbe probe, long messageBytes)
        : IPendingTensor
    {
        bool _done;

        public Tensor Wait()
        {
            if (_done) throw new InvalidOperationException("Wait was already called on this exchange");
            _done = true;
            fixed (int* r = requests) group.Call(MpiNative.Waitall(2, r, MpiNative.StatusesIgnore), "MPI_Waitall");
            group.Record(probe, "SendReceive", messageBytes, Bytes(outgoing), Bytes(incoming), isAsync: true);
            outgoing.Dispose();
            // A new handle made on the caller's thread joins the caller's dispose scope, like any op result.
            var result = group.OnMyDevice(incoming).alias();
            incoming.Dispose();
            return result;
        }

        /// <summary>
        /// Abandoned without <see cref="Wait"/> (unwinding from an error): MPI may still read or write the buffers, so
        /// they are released to the request (never freed under it); the process is about to end the job anyway.
        /// </summary>
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            for (int i = 0; i < requests.Length; i++) MpiNative.RequestFree(ref requests[i]);
            Abandoned.Add(outgoing);
            Abandoned.Add(incoming);
        }
    }

    static readonly System.Collections.Concurrent.ConcurrentBag<Tensor> Abandoned = new();

    /// <summary>
    /// In the debug mode, every rank's description of the call (op, arguments, dtype, shape) is gathered before the
    /// call, so ranks that disagree fail with both descriptions instead of hanging or exchanging garbage.
    /// </summary>
    void Verify(CollectiveCall mine, Func<CollectiveCall[], string?> rule)
    {
        if (!checkCalls) return;
        var all = CollectiveCall.GatherAll(mine, Size, comm);
        var problem = CollectiveCall.Disagreement(all) ?? rule(all);
        if (problem is not null)
        {
            // Every rank sees the disagreement: rank 0 reports it and ends the job, the others give it the time to.
            if (Rank != 0) Thread.Sleep(TimeSpan.FromSeconds(3));
            throw new CollectiveMismatchException($"{mine.Text} on {_description}, seen by rank {Rank}: {problem}");
        }
    }

    /// <summary>Tells the thread's instrumentation sink about the call before any MPI call is made.</summary>
    Instrumentation.CollectiveProbe Begin(string op, Tensor local) => Instrumentation.BeginCollective(label, op, local.shape, local.dtype.ToString());

    /// <summary>Counts the traffic (<see cref="CollectiveStats"/>) and reports the collective done to the instrumentation sink.</summary>
    void Record(Instrumentation.CollectiveProbe probe, string op, long messageBytes, long sent, long received, bool isAsync = false)
    {
        stats.Record(op, sent, received);
        probe.End(members, messageBytes, sent, received, isAsync);
    }

    Tensor OnMyDevice(Tensor t) => device.type == DeviceType.CPU ? t : t.to(device);

    /// <summary>The tensor's bytes on the CPU in row-major order: the tensor itself when it already is.</summary>
    static Tensor OnHost(Tensor t) => t.device_type == DeviceType.CPU && t.is_contiguous() ? t : t.to(CPU).contiguous();

    static long[] Header(Tensor t)
    {
        if (t.dim() > MaxDims) throw new ArgumentException($"tensors of more than {MaxDims} dimensions are not supported by the MPI backend, got {Shape(t)}");
        var header = new long[MaxDims + 2];
        header[0] = (long)t.dtype;
        header[1] = t.dim();
        for (int i = 0; i < t.dim(); i++) header[2 + i] = t.shape[i];
        return header;
    }

    static Tensor FromHeader(long[] header) => Instrumentation.ReceiveBuffer(header.Skip(2).Take((int)header[1]).ToArray(), (ScalarType)header[0]);

    static int ByteCount(Tensor t) =>
        Bytes(t) <= int.MaxValue ? (int)Bytes(t) : throw new ArgumentException($"a {Shape(t)} {t.dtype} tensor is over 2 GiB, more than one MPI message of bytes holds");

    static int[] Offsets(int[] counts)
    {
        var offsets = new int[counts.Length];
        for (int i = 1; i < counts.Length; i++) offsets[i] = checked(offsets[i - 1] + counts[i - 1]);
        return offsets;
    }

    static long Numel(IEnumerable<long> shape) => shape.Aggregate(1L, (a, b) => a * b);

    static long[] With(long[] shape, long dim, long extent)
    {
        var copy = (long[])shape.Clone();
        copy[dim] = extent;
        return copy;
    }

    void CheckRank(int r, string name)
    {
        if (r < 0 || r >= Size) throw new ArgumentOutOfRangeException(name, r, $"{_description} has ranks 0..{Size - 1}");
    }

    void Call(int code, string call) => MpiNative.Check(code, $"{call} on {_description}");
}
