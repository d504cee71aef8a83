using static TorchSharp.torch;

namespace Sd35.Mesh.Mpi;

/// <summary>
/// A rank's description of the collective it is about to make (op, arguments, dtype, shape), exchanged in the
/// MPI backend's debug mode so that ranks which disagree are told so, with every rank's view, instead of hanging
/// or exchanging misinterpreted bytes. Encoded as a fixed block of longs for one MPI_Allgather.
/// </summary>
sealed record CollectiveCall(int OpCode, long[] Args, long DType, long[] Shape)
{
    const int MaxArgs = 3, MaxDims = 12, Length = 2 + MaxArgs + 1 + MaxDims;
    static readonly string[] Ops = ["AllGather", "ReduceScatter", "AllReduce", "AllToAll", "Broadcast", "SendReceive"];
    static readonly string[][] ArgNames = [["dim"], ["dim"], [], ["scatter", "gather"], ["root"], ["to", "from"]];

    public static CollectiveCall Of(string op, Tensor t, params long[] args) =>
        new(Array.IndexOf(Ops, op), args, (long)t.dtype, t.shape);

    public string Op => Ops[OpCode];

    public string Text
    {
        get
        {
            var names = ArgNames[OpCode];
            string args = string.Join(", ", Args.Select((a, i) => $"{names[i]} {a}"));
            return $"{Op}({args}) of a {(ScalarType)DType} [{string.Join(", ", Shape)}] tensor";
        }
    }

    long[] Encode()
    {
        var block = new long[Length];
        block[0] = OpCode;
        block[1] = Args.Length;
        Args.CopyTo(block, 2);
        block[2 + MaxArgs] = DType;
        block[3 + MaxArgs] = Math.Min(Shape.Length, MaxDims - 1);
        for (int i = 0; i < Math.Min(Shape.Length, MaxDims - 1); i++) block[4 + MaxArgs + i] = Shape[i];
        return block;
    }

    static CollectiveCall Decode(ReadOnlySpan<long> block) =>
        new((int)block[0], block.Slice(2, (int)block[1]).ToArray(), block[2 + MaxArgs], block.Slice(4 + MaxArgs, (int)block[3 + MaxArgs]).ToArray());

    public static unsafe CollectiveCall[] GatherAll(CollectiveCall mine, int size, int comm)
    {
        var send = mine.Encode();
        var all = new long[Length * size];
        fixed (long* s = send, r = all)
            MpiNative.Check(MpiNative.Allgather(s, Length, MpiNative.Long, r, Length, MpiNative.Long, comm), "MPI_Allgather (collective check)");
        return Enumerable.Range(0, size).Select(k => Decode(all.AsSpan(k * Length, Length))).ToArray();
    }

    /// <summary>Rank 0's call against every other rank's: op and arguments must be the same (SendReceive's peers differ by design).</summary>
    public static string? Disagreement(CollectiveCall[] all)
    {
        var first = all[0];
        for (int r = 1; r < all.Length; r++)
        {
            bool sameArgs = first.Op == "SendReceive" || first.Args.SequenceEqual(all[r].Args);
            if (all[r].OpCode != first.OpCode || !sameArgs)
                return $"ranks disagree on the call: rank 0 made {first.Text}, rank {r} made {all[r].Text}";
        }
        return null;
    }

    public static string? SameDtype(CollectiveCall[] all) =>
        all.Any(c => c.DType != all[0].DType) ? $"dtypes differ: {Listing(all)}" : null;

    public static string? SameShape(CollectiveCall[] all) =>
        SameDtype(all) ?? (all.Any(c => !c.Shape.SequenceEqual(all[0].Shape)) ? $"shapes differ: {Listing(all)}" : null);

    public static Func<CollectiveCall[], string?> SameExcept(long dim) => all =>
        SameDtype(all) ?? (all.Any(c => c.Shape.Length != all[0].Shape.Length ||
                                      Enumerable.Range(0, c.Shape.Length).Any(i => i != dim && c.Shape[i] != all[0].Shape[i]))
            ? $"shapes differ outside dimension {dim}: {Listing(all)}" : null);

    public static string? Permutation(CollectiveCall[] all)
    {
        for (int r = 0; r < all.Length; r++)
        {
            long to = all[r].Args[0];
            if (to < 0 || to >= all.Length || all[to].Args[1] != r)
                return $"rank {r} sends to rank {to}, but rank {to} receives from rank {(to >= 0 && to < all.Length ? all[to].Args[1] : -1)}";
        }
        return null;
    }

    static string Listing(CollectiveCall[] all) =>
        string.Join(" vs ", all.Select((c, r) => $"rank {r}: {(ScalarType)c.DType} [{string.Join(", ", c.Shape)}]"));
}
