using System.Diagnostics;
using Sd35.CostModel;
using Sd35.Mesh;
using Xunit.Abstractions;

namespace Sd35.Tests.CostModel;

public sealed class DryRunSmokeTests(ITestOutputHelper output)
{
    [Fact]
    public void Full_size_meta_dry_run_smoke()
    {
        var watch = Stopwatch.StartNew();
        var result = DryRun.Run(ParallelConfig.Parse("t3k_cfg2_sp2_tp2"), Workload.Sd35Large);
        output.WriteLine($"{watch.Elapsed.TotalSeconds:F1} s");
        foreach (var d in result.Devices)
            output.WriteLine($"device {d.DeviceId}: {d.Ops.Count} ops, {d.Collectives.Count} collectives, " +
                string.Join(", ", d.Ops.GroupBy(o => (o.Section, o.Kind)).Select(g => $"{g.Key.Section}/{g.Key.Kind} {g.Sum(o => o.Flops) / 1e12:F3} TF")));
    }
}
