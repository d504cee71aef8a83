using System.Runtime.InteropServices;
using System.Text;

namespace Sd35.Mesh.Mpi;

/// <summary>
/// Sits between MPICH and hydra's PMI socket of this rank (hydra passes it as <c>PMI_FD</c>) so that a rank cannot hang in
/// <c>MPI_Finalize</c> after its work. Why: MPICH 4.0.2's UCX netmod (Debian 12's) closes every endpoint in flush mode
/// and then enters a PMI barrier; over TCP, UCX 1.13 flushes an endpoint that sent anything by a zero-byte PUT that the
/// peer must acknowledge from its own progress loop. A rank whose closes completed first waits in the PMI barrier,
/// reading only the PMI socket, and a peer still flushing towards it waits for an acknowledgement that never comes
/// (docs/multihost.md has the stacks; MPICH 4.2 moved the barrier before the closes). No MPI or UCX setting avoids it.
/// <para>
/// The relay forwards every PMI command and reply unchanged. Once this rank is in <c>MPI_Finalize</c> (<see cref="EnterFinalize"/>)
/// and MPICH has not reached its barrier within <see cref="Patience"/>, the relay enters the barrier for it (MPICH keeps
/// making UCX progress meanwhile, so peers still flushing towards this rank complete and reach the barrier too). When the
/// barrier opens, every rank is in <c>MPI_Finalize</c>, so every message of the job has been received; the ranks that
/// were waiting in the barrier go on and destroy their UCX workers, which closes their TCP connections and ends the
/// flushes that waited for them. MPICH then reaches its own barrier, gets the answer the relay kept, and finishes as usual
/// (its shared-memory finalize and PMI finalize included), so the job exits with code 0.
/// </para>
/// </summary>
sealed partial class PmiRelay
{
    /// <summary>How long MPICH may take from MPI_Finalize to its PMI barrier before the relay enters it (normally milliseconds).</summary>
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(2);

    readonly int _mpichSide, _hydraSide;
    readonly StringBuilder _fromMpich = new(), _fromHydra = new();
    long _finalizeSince = -1; // Environment.TickCount64 when MPI_Finalize began, -1 before
    bool _awaitingReply;      // MPICH sent a command whose reply has not come yet
    bool _mpichInBarrier;     // MPICH itself spoke to the launcher since MPI_Finalize began: its closes completed
    bool _tookOver;           // the relay entered the barrier for MPICH
    string? _barrierOut;      // the launcher's answer to the relay's barrier, kept for MPICH
    bool _mpichWaitsForBarrier; // MPICH reached its barrier after the relay's, before the launcher answered

    PmiRelay(int mpichSide, int hydraSide) => (_mpichSide, _hydraSide) = (mpichSide, hydraSide);

    public static PmiRelay? Current { get; private set; }

    /// <summary>
    /// Before MPI_Init: when hydra gave this process a PMI socket, hands MPICH one end of a socket pair instead and relays
    /// between the two on a background thread. Other launchers (no <c>PMI_FD</c>) are left alone.
    /// </summary>
    public static void StartIfLaunchedByHydra()
    {
        if (Current is not null || OperatingSystem.IsWindows()) return;
        if (!int.TryParse(Environment.GetEnvironmentVariable("PMI_FD"), out int hydraSide) || hydraSide < 0) return;
        var pair = new int[2];
        if (Libc.SocketPair(Libc.AfUnix, Libc.SockStream, 0, pair) != 0)
            throw new MpiException("PMI relay", 0, $"socketpair failed (errno {Marshal.GetLastPInvokeError()})");
        if (MpiNative.SetEnv("PMI_FD", pair[0].ToString(), overwrite: 1) != 0)
            throw new MpiException("PMI relay", 0, "could not set PMI_FD for MPICH");
        Current = new PmiRelay(pair[1], hydraSide);
        new Thread(Current.Run) { IsBackground = true, Name = "PMI relay" }.Start();
    }

    /// <summary>Called just before MPI_Finalize: from now on a stuck finalize is ended by the relay.</summary>
    public void EnterFinalize() => Interlocked.Exchange(ref _finalizeSince, Environment.TickCount64);

    void Run()
    {
        var buffer = new byte[4096];
        var fds = new Libc.PollFd[] { new() { Fd = _mpichSide, Events = Libc.PollIn }, new() { Fd = _hydraSide, Events = Libc.PollIn } };
        while (true)
        {
            fds[0].Revents = fds[1].Revents = 0;
            int ready = Libc.Poll(fds, (nuint)fds.Length, 100);
            if (ready < 0 && Marshal.GetLastPInvokeError() != Libc.EIntr) return;
            if ((fds[0].Revents & (Libc.PollIn | Libc.PollHup | Libc.PollErr)) != 0 && !Pump(_mpichSide, buffer, _fromMpich, FromMpich)) return;
            if ((fds[1].Revents & (Libc.PollIn | Libc.PollHup | Libc.PollErr)) != 0 && !Pump(_hydraSide, buffer, _fromHydra, FromHydra)) return;
            long since = Interlocked.Read(ref _finalizeSince);
            if (!_tookOver && !_mpichInBarrier && !_awaitingReply && since >= 0 && Environment.TickCount64 - since > Patience.TotalMilliseconds)
            {
                _tookOver = true;
                if (Trace) Console.Error.WriteLine($"[pmi {Environment.GetEnvironmentVariable("PMI_RANK")}] MPI_Finalize did not reach its PMI barrier within {Patience.TotalSeconds:0} s: the relay enters it");
                Send(_hydraSide, "cmd=barrier_in\n");
            }
        }
    }

    /// <summary>Reads what is there and hands each complete line on; false at end of stream (the rank's PMI is finished).</summary>
    static bool Pump(int fd, byte[] buffer, StringBuilder pending, Action<string> line)
    {
        long n = Libc.Read(fd, buffer, (nuint)buffer.Length);
        if (n <= 0) return n < 0 && Marshal.GetLastPInvokeError() == Libc.EIntr;
        pending.Append(Encoding.ASCII.GetString(buffer, 0, (int)n));
        for (int end; (end = pending.ToString().IndexOf('\n')) >= 0;)
        {
            string text = pending.ToString(0, end + 1);
            pending.Remove(0, end + 1);
            line(text);
        }
        return true;
    }

    /// <summary>SD35_PMI_TRACE=1 prints every PMI line of the rank and the relay's own barrier (for diagnosing launches).</summary>
    static readonly bool Trace = Environment.GetEnvironmentVariable("SD35_PMI_TRACE") == "1";

    void FromMpich(string line)
    {
        if (Trace) Console.Error.Write($"[pmi {Environment.GetEnvironmentVariable("PMI_RANK")} >] {line}");
        if (Interlocked.Read(ref _finalizeSince) >= 0) _mpichInBarrier = true;
        if (_tookOver && line.StartsWith("cmd=barrier_in", StringComparison.Ordinal))
        {
            // MPICH's closes completed after all (the peers' closing sockets end the flushes that waited for them): its
            // barrier already happened on its behalf, so it gets the answer, and the rest of finalize runs as usual.
            // If the launcher has not answered yet, its answer goes to MPICH when it comes.
            if (_barrierOut is null) { _mpichWaitsForBarrier = true; return; }
            _tookOver = false;
            Send(_mpichSide, _barrierOut);
            return;
        }
        _awaitingReply = line.StartsWith("cmd=", StringComparison.Ordinal) || line.StartsWith("mcmd=", StringComparison.Ordinal);
        Send(_hydraSide, line);
    }

    void FromHydra(string line)
    {
        if (Trace) Console.Error.Write($"[pmi {Environment.GetEnvironmentVariable("PMI_RANK")} <] {line}");
        if (_tookOver && _barrierOut is null && line.StartsWith("cmd=barrier_out", StringComparison.Ordinal))
        {
            _barrierOut = line;
            if (!_mpichWaitsForBarrier) return;
            _tookOver = false;
        }
        _awaitingReply = false;
        Send(_mpichSide, line);
    }

    static void Send(int fd, string line)
    {
        var bytes = Encoding.ASCII.GetBytes(line);
        for (int sent = 0; sent < bytes.Length;)
        {
            long n = Libc.Write(fd, bytes.AsSpan(sent), (nuint)(bytes.Length - sent));
            if (n < 0 && Marshal.GetLastPInvokeError() == Libc.EIntr) continue;
            if (n <= 0) return; // the other side is gone; the launcher deals with the job
            sent += (int)n;
        }
    }

    static partial class Libc
    {
        public const int AfUnix = 1, SockStream = 1, EIntr = 4;
        public const short PollIn = 0x001, PollErr = 0x008, PollHup = 0x010;

        [StructLayout(LayoutKind.Sequential)]
        public struct PollFd { public int Fd; public short Events; public short Revents; }

        [LibraryImport("libc", EntryPoint = "socketpair", SetLastError = true)]
        public static partial int SocketPair(int domain, int type, int protocol, [Out] int[] sv);

        [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
        public static partial int Poll([In, Out] PollFd[] fds, nuint count, int timeoutMs);

        [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
        public static partial long Read(int fd, [Out] byte[] buffer, nuint count);

        [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
        public static partial long Write(int fd, ReadOnlySpan<byte> buffer, nuint count);
    }
}
