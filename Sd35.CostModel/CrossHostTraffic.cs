using Sd35.Profiling;

namespace Sd35.CostModeling;

/// <summary>
/// The bytes one denoising step sends between hosts when a run's devices are split over several (device → host), per
/// link (the collective's group label: sp, tp, cfg …), from a recorded run. Each collective is taken as the direct
/// exchange its byte counters describe (<see cref="Sd35.Mesh.CollectiveStats"/>: a member's bytes go to the group's
/// other members in equal shares), and a share crosses when its receiver is on another host. Exact for groups of two
/// (t3k_cfg2_sp2_tp2's sp pairs when rows are hosts); for larger groups it is what a direct algorithm moves.
/// </summary>
public static class CrossHostTraffic
{
    /// <summary>Bytes per denoising step that leave a host, by link; links whose groups stay inside a host are absent.</summary>
    public static IReadOnlyDictionary<string, long> PerStep(DryRunResult run, Func<int, int> hostOf)
    {
        var bytes = new Dictionary<string, double>();
        foreach (var device in run.Devices)
            foreach (var c in device.Collectives.Where(c => c.Section == PerfSections.Step && c.Members.Count > 1))
            {
                int remote = c.Members.Count(m => hostOf(m) != hostOf(device.DeviceId));
                if (remote == 0) continue;
                bytes[c.Label] = bytes.GetValueOrDefault(c.Label) + (double)c.BytesSent * remote / (c.Members.Count - 1);
            }
        return bytes.ToDictionary(p => p.Key, p => (long)Math.Round(p.Value / run.StepsRecorded));
    }
}
