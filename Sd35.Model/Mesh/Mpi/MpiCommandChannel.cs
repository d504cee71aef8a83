namespace Sd35.Mesh.Mpi;

/// <summary>
/// Messages from world rank 0 to every other process of the job, outside any mesh run: a server's lead process
/// tells its workers what to run next (or to stop). Every process makes the channel at the same point (it duplicates
/// the world communicator, a collective), then the lead <see cref="Send"/>s and the others <see cref="Receive"/> the
/// same messages in the same order. A worker can wait for hours between requests, so it waits by polling a
/// non-blocking broadcast with sleeps instead of sitting in a blocking one, which MPICH implements as a busy loop
/// that would keep a core at 100 %. Call it from one thread at a time per process (MPI_THREAD_SERIALIZED).
/// </summary>
public sealed unsafe class MpiCommandChannel
{
    public const int Lead = 0;

    readonly int _comm;
    readonly TimeSpan _poll;

    /// <param name="poll">how long a waiting process sleeps between looks (latency added to each message)</param>
    public MpiCommandChannel(TimeSpan? poll = null)
    {
        MpiRuntime.EnsureInitialized();
        MpiNative.Check(MpiNative.CommDup(MpiNative.CommWorld, out _comm), "MPI_Comm_dup");
        MpiNative.Check(MpiNative.CommSetErrhandler(_comm, MpiNative.ErrorsReturn), "MPI_Comm_set_errhandler");
        _poll = poll ?? TimeSpan.FromMilliseconds(10);
    }

    public bool IsLead => MpiRuntime.WorldRank == Lead;

    /// <summary>The lead sends <paramref name="message"/> to every other process (returns once they may all have it).</summary>
    public void Send(byte[] message)
    {
        if (!IsLead) throw new InvalidOperationException($"only world rank {Lead} sends commands; this is rank {MpiRuntime.WorldRank}");
        long length = message.Length;
        Broadcast(&length, sizeof(long));
        fixed (byte* data = message) Broadcast(data, message.Length);
    }

    /// <summary>A non-lead process waits for the lead's next message.</summary>
    public byte[] Receive()
    {
        if (IsLead) throw new InvalidOperationException($"world rank {Lead} sends commands; it cannot receive them");
        long length = 0;
        Broadcast(&length, sizeof(long));
        if (length < 0 || length > int.MaxValue) throw new InvalidDataException($"a command of {length} bytes from the lead process");
        var message = new byte[length];
        fixed (byte* data = message) Broadcast(data, message.Length);
        return message;
    }

    void Broadcast(void* buffer, int bytes)
    {
        MpiNative.Check(MpiNative.Ibcast(buffer, bytes, MpiNative.Byte, Lead, _comm, out int request), "MPI_Ibcast");
        while (true)
        {
            MpiNative.Check(MpiNative.Test(ref request, out int done, MpiNative.StatusIgnore), "MPI_Test");
            if (done != 0) return;
            Thread.Sleep(_poll);
        }
    }
}
