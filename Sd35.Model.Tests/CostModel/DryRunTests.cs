using FluentAssertions;
using Sd35.CostModeling;
using Sd35.Mesh;
using Sd35.Profiling;
using TorchSharp;
using Xunit.Abstractions;

namespace Sd35.Tests.CostModel;

/// <summary>The dry run counts what the real code does: on the meta device exactly what a real CPU run records.</summary>
public sealed class DryRunTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("t3k_cfg2_sp2_tp2")]
    [InlineData("qb_cfg1_sp1_tp4")]
    [InlineData("n150_cfg1_sp1_tp1")]
    public void Meta_dry_run_records_the_same_ops_and_collectives_as_a_real_cpu_run(string configId)
    {
        var config = ParallelConfig.Parse(configId);
        var workload = TinyWorkload.Create();
        var meta = DryRun.Run(config, workload, steps: 2);
        var real = DryRun.Run(config, workload, steps: 2, device: torch.CPU);

        foreach (var (m, r) in meta.Devices.Zip(real.Devices))
        {
            m.DeviceId.Should().Be(r.DeviceId);
            m.Ops.Should().NotBeEmpty();
            m.Ops.Should().Equal(r.Ops, $"device {m.DeviceId}'s ops on meta and on the CPU");
            m.Collectives.Select(Key).Should().Equal(r.Collectives.Select(Key), $"device {m.DeviceId}'s collectives on meta and on the CPU");
        }
        var first = meta.Devices[0];
        output.WriteLine($"{configId}: device 0 recorded {first.Ops.Count} ops ({first.Ops.Sum(o => o.Flops):E3} FLOP) and {first.Collectives.Count} collectives on both devices");
    }

    static string Key(CollectiveEvent c) =>
        $"{c.Section} {c.Op} {c.Label} [{string.Join(",", c.Members)}] {c.MessageBytes} {c.BytesSent} {c.BytesReceived} {c.Async}";

    [Fact]
    public void Every_denoising_step_records_the_same_work()
    {
        var run = DryRun.Run(ParallelConfig.Parse("t3k_cfg2_sp2_tp2"), TinyWorkload.Create(), steps: 2);
        foreach (var device in run.Devices)
        {
            var steps = device.Ops.Where(o => o.Section == DryRun.StepSection).ToArray();
            steps.Length.Should().BeGreaterThan(0).And.Subject.Should().Match(n => n % 2 == 0);
            steps.Take(steps.Length / 2).Should().Equal(steps.Skip(steps.Length / 2));
        }
    }

    [Fact]
    public void Sections_cover_every_stage_on_the_devices_that_run_it()
    {
        var run = DryRun.Run(ParallelConfig.Parse("t3k_cfg2_sp2_tp2"), TinyWorkload.Create());
        var mesh = DeviceMesh.Create(run.Config.Mesh);
        foreach (var device in run.Devices)
        {
            var sections = device.Ops.Select(o => o.Section).ToHashSet();
            sections.Should().Contain(DryRun.StepSection);
            bool encodes = EncoderPlacement.TextEncoderGroup(mesh, run.Config, device.DeviceId) is not null;
            sections.Contains(DryRun.ClipSection).Should().Be(encodes);
            sections.Contains(DryRun.T5Section).Should().Be(encodes);
            sections.Contains(DryRun.VaeSection).Should().Be(EncoderPlacement.VaeGroup(mesh, run.Config, device.DeviceId) is not null);
            sections.Should().NotContain("", "every op belongs to a section");
        }
    }
}
