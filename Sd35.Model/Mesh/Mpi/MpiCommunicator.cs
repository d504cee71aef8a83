using System.Collections.Concurrent;

namespace Sd35.Mesh.Mpi;

/// <summary>
/// The MPI backend's process groups for the one device this process runs (device id = MPI world rank). Each group
/// is an MPI sub-communicator made once and cached by label and members: the sp, tp and cfg groups of a parallel
/// config with one <c>MPI_Comm_split</c> per family (<see cref="Prepare"/>, every process at once, as the launcher
/// does), any other group (the encoders' tensor-parallel row, for instance) on first use with
/// <c>MPI_Comm_create_group</c>, which only its members call. All of them hang off a private duplicate of
/// MPI_COMM_WORLD, so nothing else in the process can match our messages.
/// </summary>
sealed class MpiCommunicator : ICommunicator
{
    readonly DeviceMesh _mesh;
    readonly int _world;
    readonly ConcurrentDictionary<string, int> _comms = new();
    readonly ConcurrentDictionary<string, IProcessGroup> _groups = new();
    readonly ConcurrentDictionary<string, CollectiveStats> _traffic = new();

    /// <param name="checkCalls">
    /// Debug mode: before every collective the ranks exchange what they are about to do (op, arguments, dtype,
    /// shape) and fail with <see cref="CollectiveMismatchException"/> naming both sides when they disagree.
    /// </param>
    public MpiCommunicator(DeviceMesh mesh, bool checkCalls = false)
    {
        MpiRuntime.EnsureInitialized();
        if (MpiRuntime.WorldSize != mesh.Size)
            throw new ArgumentException($"the {mesh} has {mesh.Size} devices but MPI started {MpiRuntime.WorldSize} processes; start one process per device (mpirun -np {mesh.Size})");
        _mesh = mesh;
        CheckCalls = checkCalls;
        Self = mesh.Devices[MpiRuntime.WorldRank].Id;
        MpiNative.Check(MpiNative.CommDup(MpiNative.CommWorld, out _world), "MPI_Comm_dup");
    }

    public DeviceMesh Mesh => _mesh;

    /// <summary>The device this process runs: the mesh's device at index MPI world rank.</summary>
    public DeviceId Self { get; }

    public bool CheckCalls { get; }

    /// <summary>Whether <see cref="CheckCalls"/> is asked for in the environment: <c>SD35_MPI_CHECK=1</c>.</summary>
    public static bool CheckCallsFromEnvironment => Environment.GetEnvironmentVariable("SD35_MPI_CHECK") is "1" or "true";

    /// <summary>
    /// Makes the sp, tp and cfg communicators of <paramref name="config"/> with one MPI_Comm_split each. Collective
    /// over all processes: every process calls it with the same config before its rank program.
    /// </summary>
    public void Prepare(ParallelConfig config)
    {
        var groups = MeshRank.GroupMembers(_mesh, config, Self);
        foreach (var label in new[] { MeshGroups.Sp, MeshGroups.Tp, MeshGroups.Cfg })
        {
            var members = groups[label];
            int index = members.ToList().IndexOf(Self);
            // Groups of one never reach the communicator (MeshRank uses the identity group), so they sit the split out.
            int color = members.Count > 1 ? members.Min().Value : MpiNative.Undefined;
            MpiNative.Check(MpiNative.CommSplit(_world, color, index, out int comm), $"MPI_Comm_split for the {label} groups");
            if (comm != MpiNative.CommNull) _comms.TryAdd(Key(label, members), comm);
        }
    }

    public IProcessGroup Group(string label, IReadOnlyList<DeviceId> members, DeviceId self)
    {
        ArgumentException.ThrowIfNullOrEmpty(label);
        if (self != Self) throw new ArgumentException($"this process runs device {Self}; it cannot act for device {self}");
        int rank = members.ToList().IndexOf(self);
        if (rank < 0) throw new ArgumentException($"device {self} is not a member of group '{label}' [{string.Join(",", members)}]");
        if (members.Distinct().Count() != members.Count) throw new ArgumentException($"group '{label}' lists a device twice: [{string.Join(",", members)}]");
        foreach (var m in members)
            if (!_mesh.Contains(m)) throw new ArgumentException($"group '{label}': device {m} is not in the {_mesh}");
        string key = Key(label, members);
        return _groups.GetOrAdd(key, _ =>
        {
            int comm = _comms.GetOrAdd(key, _ => CreateGroup(members, key));
            return new MpiProcessGroup(comm, label, members.Select(m => m.Value).ToArray(), rank, _mesh.DeviceOf(self), Traffic(self, label), CheckCalls);
        });
    }

    public CollectiveStats Traffic(DeviceId self, string label)
    {
        if (self != Self) throw new ArgumentException($"this process runs device {Self}; the traffic of device {self} is counted in its own process");
        return _traffic.GetOrAdd(label, _ => new CollectiveStats());
    }

    /// <summary>Every label this process's device has traffic under, with its statistics.</summary>
    public IReadOnlyDictionary<string, CollectiveStats> TrafficOf(DeviceId self)
    {
        if (self != Self) throw new ArgumentException($"this process runs device {Self}; the traffic of device {self} is counted in its own process");
        return new Dictionary<string, CollectiveStats>(_traffic);
    }

    /// <summary>
    /// Which process runs which rank ("rank 3: pid 4242 on host-b", for every rank), gathered from all processes (a
    /// collective), printed at the start of a job: MPICH's launcher names processes only by pid and host.
    /// </summary>
    public unsafe IReadOnlyList<(DeviceId Device, int Pid, string Host)> ProcessMap()
    {
        const int width = 64;
        var mine = new byte[width];
        System.Text.Encoding.UTF8.GetBytes($"{Environment.ProcessId} {Environment.MachineName}".PadRight(width).AsSpan(0, width), mine);
        var all = new byte[width * _mesh.Size];
        fixed (byte* s = mine, r = all)
            MpiNative.Check(MpiNative.Allgather(s, width, MpiNative.Byte, r, width, MpiNative.Byte, _world), "MPI_Allgather (process map)");
        return Enumerable.Range(0, _mesh.Size).Select(rank =>
        {
            var parts = System.Text.Encoding.UTF8.GetString(all, rank * width, width).Trim().Split(' ', 2);
            return (_mesh.Devices[rank].Id, int.Parse(parts[0]), parts[1]);
        }).ToArray();
    }

    /// <summary>The group's communicator from the world group restricted to its members, in member order (rank i = members[i]).</summary>
    unsafe int CreateGroup(IReadOnlyList<DeviceId> members, string key)
    {
        var worldRanks = members.Select(m => _mesh.Devices.ToList().FindIndex(d => d.Id == m)).ToArray();
        MpiNative.Check(MpiNative.CommGroup(_world, out int world), "MPI_Comm_group");
        int group;
        fixed (int* ranks = worldRanks) MpiNative.Check(MpiNative.GroupIncl(world, worldRanks.Length, ranks, out group), "MPI_Group_incl");
        MpiNative.Check(MpiNative.CommCreateGroup(_world, group, Tag(key), out int comm), $"MPI_Comm_create_group for {key}");
        MpiNative.GroupFree(ref group);
        MpiNative.GroupFree(ref world);
        return comm;
    }

    static string Key(string label, IReadOnlyList<DeviceId> members) => $"{label}[{string.Join(",", members)}]";

    /// <summary>A tag that every member computes alike (string.GetHashCode is randomized per process): FNV-1a, folded under MPI's smallest tag bound.</summary>
    static int Tag(string key)
    {
        uint hash = 2166136261;
        foreach (char c in key) hash = (hash ^ c) * 16777619;
        return (int)(hash % 32767);
    }
}
