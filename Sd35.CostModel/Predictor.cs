using Sd35.CostModeling.Systems;
using Sd35.Mesh;
using Sd35.Profiling;
using Sd35.Tools.Profiling;

namespace Sd35.CostModeling;

/// <summary>
/// The two free factors of the model. <see cref="ComputeEfficiency"/>: the fraction of the system's matrix rate that
/// GEMM, attention and convolution reach. <see cref="OpOverheadUs"/>: a fixed cost added to every operation
/// (dispatch and the floor of a small kernel). A system that states its own value (GPU priors) uses that instead.
/// </summary>
public sealed record ModelFactors(double ComputeEfficiency, double OpOverheadUs)
{
    public override string ToString() => $"compute efficiency {ComputeEfficiency:P1}, op overhead {OpOverheadUs:F1} µs";
}

/// <summary>
/// What-if switches for a prediction, for asking what would have to change to reach a target: scale the link
/// bandwidth, hide the blocking (tensor-parallel) collectives behind compute, or scale the per-op overhead.
/// </summary>
public sealed record WhatIf(double LinkBandwidthScale = 1, bool OverlapBlockingCollectives = false, double OpOverheadScale = 1, double ComputeScale = 1, string Name = "as is");

/// <summary>One section of one device: the time of its ops, of its blocking collectives, and the part of its asynchronous ring traffic the attention does not hide.</summary>
public sealed record DeviceSectionTime(int DeviceId, double ComputeSeconds, double CollectiveSeconds, double RingSeconds, double ExposedRingSeconds,
    double Flops, long DramBytes, int Ops, int Collectives)
{
    public double Seconds => ComputeSeconds + CollectiveSeconds + ExposedRingSeconds;
}

/// <summary>One collective kind of one group in a section, summed per device: calls, message size, bytes over the busiest link and time.</summary>
public sealed record CollectiveSummary(string Section, string Label, string Op, int GroupSize, string Axis, string Topology, int Links, long Launches,
    long MessageBytes, double BottleneckBytes, double Seconds, bool Overlapped);

/// <summary>
/// Roofline per op and a latency–bandwidth model per collective, applied to what a dry run recorded:
/// <list type="bullet">
/// <item>op: max(flops / (matrix or vector rate), DRAM bytes / achieved DRAM bandwidth) + a fixed per-op overhead;</item>
/// <item>blocking collective: base + per-hop latency + bottleneck bytes / bus bandwidth, where bottleneck bytes follow the
/// nccl-tests definitions ((N−1)·m for AllGather, (N−1)/N·m for ReduceScatter, 2(N−1)/N·m for AllReduce) and the bus
/// bandwidth is links × link rate × the measured efficiency for that op, topology and group size (twice for a ring);</item>
/// <item>ring attention's asynchronous K/V passes overlap the attention: only what exceeds the section's attention time counts;</item>
/// <item>no other overlap: the tensor-parallel gathers feed the next GEMM;</item>
/// <item>a section takes as long as its slowest device (collectives synchronise the devices).</item>
/// </list>
/// </summary>
public static class Predictor
{
    public static IReadOnlyDictionary<string, DeviceSectionTime> SectionTimes(DryRunResult run, SystemSpec system, ModelFactors factors, WhatIf? whatIf = null) =>
        Sections(run).ToDictionary(s => s, s => SlowestDevice(run, system, factors, whatIf ?? new WhatIf(), s));

    public static IEnumerable<string> Sections(DryRunResult run) =>
        run.Devices.SelectMany(d => d.Ops.Select(o => o.Section).Concat(d.Collectives.Select(c => c.Section))).Distinct();

    static DeviceSectionTime SlowestDevice(DryRunResult run, SystemSpec system, ModelFactors factors, WhatIf whatIf, string section) =>
        run.Devices.Select(d => DeviceTime(run, d, system, factors, whatIf, section)).MaxBy(t => t.Seconds)!;

    public static DeviceSectionTime DeviceTime(DryRunResult run, DeviceRecord device, SystemSpec system, ModelFactors factors, WhatIf whatIf, string section)
    {
        var ops = device.Ops.Where(o => o.Section == section).ToArray();
        var collectives = device.Collectives.Where(c => c.Section == section).ToArray();
        double compute = ops.Sum(o => OpSeconds(o, system, factors, whatIf));
        double attention = ops.Where(o => o.Kind == OpKind.Attention).Sum(o => OpSeconds(o, system, factors, whatIf));
        double blocking = collectives.Where(c => !c.Async).Sum(c => CollectiveSeconds(run, c, system, whatIf).Seconds);
        if (whatIf.OverlapBlockingCollectives) blocking = Math.Max(0, blocking - (compute - attention));
        double ring = collectives.Where(c => c.Async).Sum(c => CollectiveSeconds(run, c, system, whatIf).Seconds);
        return new DeviceSectionTime(device.DeviceId, compute, blocking, ring, Math.Max(0, ring - attention),
            ops.Sum(o => o.Flops), ops.Sum(o => o.BytesRead + o.BytesWritten), ops.Length, collectives.Length);
    }

    /// <summary>The factors that apply on <paramref name="system"/>: its own priors where it states them, else the fitted ones.</summary>
    public static ModelFactors Effective(SystemSpec system, ModelFactors fitted) =>
        new(system.ComputeEfficiency?.Value ?? fitted.ComputeEfficiency, system.OpOverheadUs?.Value ?? fitted.OpOverheadUs);

    public static double OpSeconds(OpEvent op, SystemSpec system, ModelFactors factors, WhatIf? whatIf = null)
    {
        var effective = Effective(system, factors);
        double efficiency = Math.Min(1, effective.ComputeEfficiency * (whatIf?.ComputeScale ?? 1));
        double overheadUs = effective.OpOverheadUs * (whatIf?.OpOverheadScale ?? 1);
        double rate = op.Kind is OpKind.Gemm or OpKind.Attention or OpKind.Conv
            ? system.MatmulTflops.Value * 1e12 * efficiency
            : system.VectorTflops.Value * 1e12;
        double memory = (op.BytesRead + op.BytesWritten) / (system.DramGBps.Value * 1e9 * system.DramEfficiency.Value);
        return Math.Max(op.Flops / rate, memory) + overheadUs * 1e-6;
    }

    /// <summary>Time of one collective call and how it was modelled.</summary>
    public static CollectiveSummary CollectiveSeconds(DryRunResult run, CollectiveEvent c, SystemSpec system, WhatIf? whatIf = null)
    {
        int n = c.Members.Count;
        string op = c.Op;
        double m = c.MessageBytes;
        double bottleneck = op switch
        {
            "AllGather" => (n - 1) * m,
            "ReduceScatter" => (n - 1) * m / n,
            "AllReduce" => 2.0 * (n - 1) * m / n,
            "AllToAll" => Math.Floor(n / 2.0) * Math.Ceiling(n / 2.0) / n * m,
            _ => m, // SendReceive, Broadcast: the message crosses each link once
        };
        string effKey = op switch { "ReduceScatter" => "reduce_scatter", "AllReduce" => "all_reduce", "AllToAll" => "all_to_all", _ => "all_gather" };
        double scale = whatIf?.LinkBandwidthScale ?? 1;
        if (system.Switched)
        {
            double busbw = Pick(system.SwitchedBusBw!, effKey) * 1e9 * scale;
            double latency = system.Latency!.BaseUs.GetValueOrDefault(op, 10);
            return new CollectiveSummary(c.Section, c.Label, op, n, "-", "switched", 0, 1, c.MessageBytes, bottleneck, latency * 1e-6 + bottleneck / busbw, c.Async);
        }
        var (axis, hops) = Geometry(run, c.Members);
        int links = (int)(axis switch { 0 => system.LinksAxis0!.Value, 1 => system.LinksAxis1!.Value, _ => Math.Min(system.LinksAxis0!.Value, system.LinksAxis1!.Value) });
        int extent = axis switch { 0 => run.Config.Mesh.Rows, 1 => run.Config.Mesh.Cols, _ => 0 };
        string axisTopology = axis switch { 0 => system.TopologyAxis0, 1 => system.TopologyAxis1, _ => "linear" };
        bool ring = axisTopology == "ring" && n == extent && n > 2;
        string table = ring ? "ring" : n <= 2 ? "line2" : "line4";
        double efficiency = Pick(system.Efficiency![table], effKey);
        double bandwidth = efficiency * links * system.LinkGBps!.Value * 1e9 * (ring ? 2 : 1) * scale;
        double hopCount = ring ? n / 2.0 : hops;
        double latencyUs = system.Latency!.BaseUs.GetValueOrDefault(op, 5) + system.Latency.PerHopUs.GetValueOrDefault(op, 1) * hopCount;
        return new CollectiveSummary(c.Section, c.Label, op, n, axis < 0 ? "0+1" : axis.ToString(), ring ? "ring" : "linear", links, 1, c.MessageBytes, bottleneck,
            latencyUs * 1e-6 + bottleneck / bandwidth, c.Async);
    }

    static double Pick(CclEfficiency e, string key) => key switch
    {
        "reduce_scatter" => e.ReduceScatter.Value,
        "all_reduce" => e.AllReduce.Value,
        "all_to_all" => e.AllToAll.Value,
        _ => e.AllGather.Value,
    };

    /// <summary>
    /// The mesh axis a group lies on (0: a column, 1: a row, −1: neither, as the encoders' 2×2 → 1×4 reshape) and the
    /// hops a line through its members in rank order takes (Manhattan distance between consecutive members).
    /// </summary>
    static (int Axis, int Hops) Geometry(DryRunResult run, IReadOnlyList<int> members)
    {
        var coords = members.Select(id => run.Devices.First(d => d.DeviceId == id).Coord).ToArray();
        int axis = coords.All(c => c.Row == coords[0].Row) ? 1 : coords.All(c => c.Col == coords[0].Col) ? 0 : -1;
        int hops = 0;
        for (int i = 1; i < coords.Length; i++) hops += Math.Abs(coords[i].Row - coords[i - 1].Row) + Math.Abs(coords[i].Col - coords[i - 1].Col);
        return (axis, hops);
    }

    /// <summary>Per section, label and op of the slowest device's view: launches, message size, bottleneck bytes and time.</summary>
    public static IReadOnlyList<CollectiveSummary> CollectiveTable(DryRunResult run, SystemSpec system, WhatIf? whatIf = null)
    {
        var device = run.Devices.MaxBy(d => d.Collectives.Count)!;
        return device.Collectives
            .Select(c => CollectiveSeconds(run, c, system, whatIf))
            .GroupBy(s => (s.Section, s.Label, s.Op, s.GroupSize, s.Overlapped))
            .Select(g => g.First() with
            {
                Launches = g.Count(),
                MessageBytes = g.Sum(x => x.MessageBytes),
                BottleneckBytes = g.Sum(x => x.BottleneckBytes),
                Seconds = g.Sum(x => x.Seconds),
            })
            .OrderBy(s => s.Section).ThenByDescending(s => s.Seconds)
            .ToArray();
    }
}
