using System.Reflection;
using Sd35.Mesh;
using static TorchSharp.torch;

namespace Sd35.Tests.TestSupport;

/// <summary>
/// A tensor-parallel group for tests: one thread per rank, AllReduce through shared memory and a barrier,
/// nothing else. Every rank sums the contributions in rank order, so all ranks get bit-identical results.
/// Built as a <see cref="DispatchProxy"/> so that it implements whatever <see cref="IProcessGroup"/> declares:
/// collectives other than AllReduce (which the tensor-parallel encoders never call) fail loudly, and members
/// added to the interface later do not break this helper.
/// </summary>
public class ThreadedAllReduceGroup : DispatchProxy
{
    sealed class Shared(int size)
    {
        public readonly Barrier Barrier = new(size);
        public readonly Tensor?[] Slots = new Tensor?[size];
    }

    Shared _shared = null!;
    int _rank;

    /// <summary>Runs <paramref name="rankBody"/> for every rank of a group of <paramref name="size"/>, each on its own thread.</summary>
    public static T[] Run<T>(int size, Func<IProcessGroup, T> rankBody)
    {
        var shared = new Shared(size);
        var results = new T[size];
        var errors = new Exception?[size];
        var threads = Enumerable.Range(0, size).Select(rank => new Thread(() =>
        {
            try
            {
                results[rank] = rankBody(Create(shared, rank));
            }
            catch (Exception e)
            {
                errors[rank] = e;
                shared.Barrier.RemoveParticipant(); // let the other ranks fail instead of waiting forever
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        var failures = errors.Where(e => e is not null).ToList();
        if (failures.Count > 0) throw new AggregateException(failures!);
        return results;
    }

    static IProcessGroup Create(Shared shared, int rank)
    {
        var group = Create<IProcessGroup, ThreadedAllReduceGroup>();
        var self = (ThreadedAllReduceGroup)(object)group;
        self._shared = shared;
        self._rank = rank;
        return group;
    }

    protected override object? Invoke(MethodInfo? method, object?[]? args) => method?.Name switch
    {
        "get_Rank" => (object)_rank,
        "get_Size" => (object)_shared.Slots.Length,
        nameof(IProcessGroup.AllReduce) => AllReduce((Tensor)args![0]!),
        _ => throw new NotSupportedException($"{nameof(ThreadedAllReduceGroup)} implements only AllReduce, not {method?.Name}"),
    };

    Tensor AllReduce(Tensor local)
    {
        _shared.Slots[_rank] = local;
        _shared.Barrier.SignalAndWait();
        var sum = _shared.Slots[0]!.clone();
        for (int r = 1; r < _shared.Slots.Length; r++) sum.add_(_shared.Slots[r]!);
        // Nobody may replace its slot (next collective) before everybody has read this one.
        _shared.Barrier.SignalAndWait();
        return sum;
    }
}
