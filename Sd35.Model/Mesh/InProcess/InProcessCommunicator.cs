using System.Collections.Concurrent;

namespace Sd35.Mesh.InProcess;

/// <summary>
/// The in-process backend: process groups between the rank threads of one <see cref="DeviceMesh"/>. It also holds
/// the run's failure state: the first real failure aborts every group, so ranks blocked in collectives are
/// released with <see cref="CollectiveAbortedException"/> instead of hanging. It lives as long as its session: the
/// groups stay the same objects from run to run, and <see cref="BeginRun"/> clears what a run (a failed one too) left.
/// </summary>
sealed class InProcessCommunicator : ICommunicator
{
    readonly DeviceMesh _mesh;
    readonly ConcurrentDictionary<string, Rendezvous> _rendezvous = new();
    readonly ConcurrentDictionary<(string Key, DeviceId Self), InProcessProcessGroup> _groups = new();
    readonly ConcurrentDictionary<(DeviceId Self, string Label), CollectiveStats> _traffic = new();
    readonly ConcurrentDictionary<DeviceId, bool> _finished = new();
    CancellationTokenSource _abort = new();
    Exception? _cause;

    public InProcessCommunicator(DeviceMesh mesh, TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "the collective timeout must be positive");
        _mesh = mesh;
        Timeout = timeout;
    }

    /// <summary>How long a collective waits for the other ranks before it fails the run.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>The first failure of the run (a rank's exception, a timeout or a mismatch), or null.</summary>
    public Exception? Cause => Volatile.Read(ref _cause);

    public CancellationToken Aborted => _abort.Token;

    /// <summary>
    /// Starts a run on the same groups: no failure, no finished rank, every group at its first collective again. Called
    /// between runs only (no rank thread alive), so nothing of the previous run is still reading a deposit.
    /// </summary>
    internal void BeginRun()
    {
        Volatile.Write(ref _cause, null);
        _finished.Clear();
        if (_abort.IsCancellationRequested)
        {
            _abort.Dispose();
            _abort = new CancellationTokenSource();
        }
        foreach (var r in _rendezvous.Values) r.Reset();
        foreach (var g in _groups.Values) g.Reset();
    }

    public IProcessGroup Group(string label, IReadOnlyList<DeviceId> members, DeviceId self)
    {
        ArgumentException.ThrowIfNullOrEmpty(label);
        if (members.Count == 0) throw new ArgumentException("a group needs at least one member");
        if (members.Distinct().Count() != members.Count) throw new ArgumentException($"group '{label}' lists a device twice: [{string.Join(",", members)}]");
        foreach (var m in members)
            if (!_mesh.Contains(m)) throw new ArgumentException($"group '{label}': device {m} is not in the {_mesh}");
        int rank = members.ToList().IndexOf(self);
        if (rank < 0) throw new ArgumentException($"device {self} is not a member of group '{label}' [{string.Join(",", members)}]");
        string key = $"{label}[{string.Join(",", members)}]";
        var rendezvous = _rendezvous.GetOrAdd(key, _ => new Rendezvous(this, label, members.ToArray()));
        return _groups.GetOrAdd((key, self), _ =>
            new InProcessProcessGroup(rendezvous, rank, _mesh.DeviceOf(self), Traffic(self, label)));
    }

    public CollectiveStats Traffic(DeviceId self, string label) => _traffic.GetOrAdd((self, label), _ => new CollectiveStats());

    /// <summary>Every label device <paramref name="self"/> has traffic under, with its statistics.</summary>
    public IReadOnlyDictionary<string, CollectiveStats> TrafficOf(DeviceId self) =>
        _traffic.Where(p => p.Key.Self == self).ToDictionary(p => p.Key.Label, p => p.Value);

    /// <summary>
    /// Fails the run: the first cause is kept, every waiting collective is woken and fails. A
    /// <see cref="CollectiveAbortedException"/> is a consequence, never a cause, so it does not replace one.
    /// </summary>
    public void Abort(Exception cause)
    {
        if (cause is CollectiveAbortedException && Cause is not null) return;
        if (Interlocked.CompareExchange(ref _cause, cause, null) is not null) return;
        _abort.Cancel();
        foreach (var r in _rendezvous.Values) r.Wake();
    }

    /// <summary>Marks a rank's program as returned, so that collectives still waiting for it fail at once.</summary>
    public void MarkFinished(DeviceId self)
    {
        _finished[self] = true;
        foreach (var r in _rendezvous.Values)
            if (r.Members.Contains(self)) r.Wake();
    }

    internal bool HasFinished(DeviceId device) => _finished.ContainsKey(device);

    internal Exception? AbortedError(string call)
    {
        var cause = Cause;
        if (cause is null) return null;
        MeshFailure.RecordInterruptedCollective(cause, call);
        return new CollectiveAbortedException($"{call} aborted: the run failed with {cause.GetType().Name}: {cause.Message}", cause);
    }
}
