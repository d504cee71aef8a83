using System.Text;
using ApprovalTests;
using ApprovalTests.Namers;
using ApprovalTests.Reporters;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.Mesh.Tracing;
using Sd35.Models.Transformer;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Parallel;

/// <summary>
/// The parallel plan of a named config as an approved text file under version control
/// (ParallelPlans/ParallelPlanSnapshots.Plan_matches_the_approved_snapshot.&lt;id&gt;.approved.txt, via ApprovalTests):
/// each device's weight shards (name, shape, dtype) and the collectives of one guided denoising step of the tiny
/// reference MMDiT (group, op, this device's shape and dtype, bytes sent and received), in program order. A change to
/// the sharding scheme shows up as a reviewed diff; devices with identical content are listed together.
/// To approve a change: copy the .received.txt over the .approved.txt (the failure message names both).
/// </summary>
[UseReporter(typeof(QuietReporter))]
[UseApprovalSubdirectory("ParallelPlans")]
public abstract class ParallelPlanSnapshots(string id)
{
    // 16×16 latents (8×8 = 64 image tokens, divisible by every sp), 24 prompt tokens: small, and every axis used.
    const int LatentSize = 16, PromptTokens = 24;

    [Fact]
    public void Plan_matches_the_approved_snapshot()
    {
        using (ApprovalResults.ForScenario(id))
            Approvals.Verify(Describe(id));
    }

    public static string Describe(string id)
    {
        var config = ParallelConfig.Parse(id);
        var folder = new Sd35.Tensors.Checkpoints.ModelFolder(RepoPaths.Fixtures("reference", "transformer", "tiny"));
        // Each device's collectives in program order, as the one instrumentation hook reports them (a step trace's capture).
        var trace = new StepTrace();
        var run = MeshRunner.Execute(config, rank =>
        {
            using var step = trace.Step(rank.Id.Value, "plan");
            using var scope = NewDisposeScope();
            using var model = SD3Transformer2DModel.FromFolder(folder, rank);
            var t = model.Config;
            int batch = config.Cfg.Factor == 2 ? 1 : 2;
            var generator = new Generator(0);
            var prediction = model.Forward(randn([batch, t.InChannels, LatentSize, LatentSize], generator: generator),
                randn([batch, PromptTokens, t.JointAttentionDim], generator: generator), randn([batch, t.PooledProjectionDim], generator: generator),
                full([batch], 500f));
            if (config.Cfg.Factor == 2) rank.Cfg.AllGather(prediction, 0);
            step.Complete();
            return model.named_parameters().Select(p => $"{p.name} [{string.Join(", ", p.parameter.shape)}] {p.parameter.dtype}").ToArray();
        });

        var text = new StringBuilder();
        text.AppendLine($"config {id}: {config}");
        text.AppendLine($"workload: fixtures/reference/transformer/tiny, one guided step, latents {LatentSize}×{LatentSize}, {PromptTokens} prompt tokens, batch {(config.Cfg.Factor == 2 ? "1 per cfg submesh" : "2 (both branches)")}");
        text.AppendLine();
        text.AppendLine("## weight shards per device");
        AppendGrouped(text, run.Results.Select((lines, device) => (device, (IReadOnlyList<string>)lines)));
        text.AppendLine();
        text.AppendLine("## collectives of one step per device, in program order (group op shape dtype: bytes sent / received)");
        var programs = Enumerable.Range(0, config.DeviceCount).Select(device =>
        {
            var collectives = trace.Captured.Single(p => p.Rank == device).Collectives;
            return (device, (IReadOnlyList<string>)collectives.Select(c => $"{c.Call.Group} {c.Call.Op} {c.Call.ShapeText} {c.Call.DType}: {c.BytesSent} / {c.BytesReceived} B").ToArray());
        });
        AppendGrouped(text, programs);
        text.AppendLine();
        text.AppendLine("## traffic of one step per device (group: op ×count sent/received)");
        foreach (var device in Enumerable.Range(0, config.DeviceCount))
            foreach (var (group, stats) in run.AllTraffic[device].OrderBy(kv => kv.Key, StringComparer.Ordinal))
                text.AppendLine($"device {device} {group}: {stats}");
        return text.ToString();
    }

    static void AppendGrouped(StringBuilder text, IEnumerable<(int Device, IReadOnlyList<string> Lines)> perDevice)
    {
        foreach (var group in perDevice.GroupBy(d => string.Join("\n", d.Lines)))
        {
            text.AppendLine($"devices {string.Join(", ", group.Select(d => d.Device))}:");
            foreach (var line in group.First().Lines) text.AppendLine($"  {line}");
        }
    }
}

#pragma warning disable IDE1006 // class names carry config ids, so `dotnet test --filter <id>` selects them
public sealed class n150_cfg1_sp1_tp1_plan() : ParallelPlanSnapshots("n150_cfg1_sp1_tp1");
public sealed class n300_cfg1_sp1_tp2_plan() : ParallelPlanSnapshots("n300_cfg1_sp1_tp2");
public sealed class n300_cfg1_sp2_tp1_plan() : ParallelPlanSnapshots("n300_cfg1_sp2_tp1");
public sealed class qb_cfg1_sp2_tp2_plan() : ParallelPlanSnapshots("qb_cfg1_sp2_tp2");
public sealed class qb_cfg1_sp1_tp4_plan() : ParallelPlanSnapshots("qb_cfg1_sp1_tp4");
public sealed class t3k_cfg2_sp2_tp2_plan() : ParallelPlanSnapshots("t3k_cfg2_sp2_tp2");
public sealed class t3k_cfg2_sp1_tp4_plan() : ParallelPlanSnapshots("t3k_cfg2_sp1_tp4");
public sealed class t3k_cfg1_sp2_tp4_plan() : ParallelPlanSnapshots("t3k_cfg1_sp2_tp4");
public sealed class tg_cfg2_sp4_tp4_plan() : ParallelPlanSnapshots("tg_cfg2_sp4_tp4");
