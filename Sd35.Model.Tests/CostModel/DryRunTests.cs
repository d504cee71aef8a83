using System.Text.Json;
using FluentAssertions;
using Sd35.CostModeling;
using Sd35.Mesh;
using Sd35.Pipeline;
using Sd35.Profiling;
using Sd35.Tests.TestSupport;
using Sd35.Tokenizers;
using Sd35.Tools.Profiling;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Sd35.Tests.CostModel;

/// <summary>
/// The dry run counts what the real code does: the tiny reference pipeline (fixtures/reference/pipeline/case0: real
/// weights, T5 on, guidance, two steps) run through the per-device program records on the meta device exactly the
/// ops and collectives it records when it computes for real on the CPU.
/// </summary>
public sealed class DryRunTests(ITestOutputHelper output)
{
    static readonly string Case = RepoPaths.Fixtures("reference", "pipeline", "case0", "case.json");

    static (PipelineComponents Components, GenerationRequest Request) TinyPipeline()
    {
        var components = PipelineComponents.FromCase(Case, RepoPaths.Fixtures("reference"), () => TokenizerSet.Default());
        using var json = JsonDocument.Parse(File.ReadAllText(Case));
        var root = json.RootElement;
        var request = new GenerationRequest
        {
            Prompt = root.GetProperty("prompt").GetString()!, NegativePrompt = root.GetProperty("negative_prompt").GetString()!,
            Steps = root.GetProperty("steps").GetInt32(), GuidanceScale = root.GetProperty("guidance_scale").GetDouble(),
            Width = root.GetProperty("width").GetInt32(), Height = root.GetProperty("height").GetInt32(),
            MaxSequenceLength = root.GetProperty("max_sequence_length").GetInt32(),
        };
        return (components, request);
    }

    static DryRunResult Tiny(string configId, ComputeDevice device)
    {
        var (components, request) = TinyPipeline();
        return DryRun.Run(ParallelConfig.Parse(configId), components, request, ScalarType.Float32, device, "tiny reference pipeline");
    }

    [Theory]
    [InlineData("t3k_cfg2_sp2_tp2")]
    [InlineData("qb_cfg1_sp1_tp4")]
    [InlineData("n150_cfg1_sp1_tp1")]
    public void Meta_dry_run_records_the_same_ops_and_collectives_as_a_real_cpu_run(string configId)
    {
        var meta = Tiny(configId, ComputeDevice.Meta);
        var real = Tiny(configId, ComputeDevice.Cpu);

        foreach (var (m, r) in meta.Devices.Zip(real.Devices))
        {
            m.DeviceId.Should().Be(r.DeviceId);
            m.Ops.Should().NotBeEmpty();
            m.Ops.Should().Equal(r.Ops, $"device {m.DeviceId}'s ops on meta and on the CPU");
            m.Collectives.Select(Key).Should().Equal(r.Collectives.Select(Key), $"device {m.DeviceId}'s collectives on meta and on the CPU");
        }
        var first = meta.Devices[0];
        output.WriteLine($"{configId}: device 0 recorded {first.Ops.Count} ops ({first.Ops.Sum(o => o.Flops):E3} FLOP) and {first.Collectives.Count} collectives, the same on meta and on the CPU");
    }

    static string Key(CollectiveEvent c) =>
        $"{c.Section} {c.Op} {c.Label} [{string.Join(",", c.Members)}] {c.MessageBytes} {c.BytesSent} {c.BytesReceived} {c.Async}";

    [Fact]
    public void Every_denoising_step_records_the_same_work()
    {
        var run = Tiny("t3k_cfg2_sp2_tp2", ComputeDevice.Meta);
        run.StepsRecorded.Should().Be(2);
        foreach (var device in run.Devices)
        {
            var steps = device.Ops.Where(o => o.Section == PerfSections.Step).ToArray();
            steps.Length.Should().BeGreaterThan(0).And.Subject.Should().Match(n => n % 2 == 0);
            steps.Take(steps.Length / 2).Should().Equal(steps.Skip(steps.Length / 2));
        }
    }

    [Fact]
    public void Sections_cover_every_stage_on_the_devices_that_run_it()
    {
        var run = Tiny("t3k_cfg2_sp2_tp2", ComputeDevice.Meta);
        var mesh = DeviceMesh.Create(run.Config.Mesh);
        foreach (var device in run.Devices)
        {
            var sections = device.Ops.Select(o => o.Section).ToHashSet();
            sections.Should().Contain(PerfSections.Step);
            bool encodes = StagePlacement.TextEncoders(mesh, run.Config, device.DeviceId) is not null;
            sections.Contains(PerfSections.ClipEncoding).Should().Be(encodes);
            sections.Contains(PerfSections.T5Encoding).Should().Be(encodes);
            sections.Contains(PerfSections.Vae).Should().Be(StagePlacement.Vae(mesh, run.Config, device.DeviceId) is not null);
            sections.Should().NotContain("", "every op belongs to a section");
        }
    }
}
