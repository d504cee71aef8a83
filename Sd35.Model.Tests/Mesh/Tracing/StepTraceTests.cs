using System.Diagnostics;
using System.Text.Json;
using FluentAssertions;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.Mesh.Tracing;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Mesh.Tracing;

/// <summary>The step trace: capture on the first step, check later steps collective by collective, export for Perfetto.</summary>
[Collection(MeshRunCollection.Name)]
public class StepTraceTests
{
    static readonly MeshRunOptions Patient = new() { CollectiveTimeout = TimeSpan.FromSeconds(60) };

    /// <summary>A toy step: a tp AllGather and an AllReduce, sizes from <paramref name="width"/>.</summary>
    static void ToyStep(MeshRank rank, StepTrace trace, Func<int, long> width)
    {
        var tp = rank.Group("tp", rank.Mesh.Ids);
        using var step = trace.Step(rank.Id, "guided");
        using var scope = NewDisposeScope();
        var x = ones(2, width(rank.Id));
        tp.AllGather(x, 1);
        tp.AllReduce(x);
        step.Complete();
    }

    [Fact]
    public void First_step_is_captured_and_later_steps_that_follow_it_pass()
    {
        var trace = new StepTrace();
        for (int i = 0; i < 3; i++) MeshRunner.Run(DeviceMesh.Create(1, 2), rank => { ToyStep(rank, trace, _ => 4); return 0; }, Patient);

        trace.Captured.Should().HaveCount(2);
        trace.Captured[1].Collectives.Select(c => c.Call.ToString()).Should().Equal("tp AllGather [2, 4] Float32", "tp AllReduce [2, 4] Float32");
        trace.Captured[1].Collectives[0].BytesSent.Should().Be(32);
        trace.CheckedSteps.Should().Be(4);
    }

    [Fact]
    public void A_rank_that_diverges_fails_at_once_naming_itself_the_op_and_both_shapes()
    {
        var trace = new StepTrace();
        MeshRunner.Run(DeviceMesh.Create(1, 2), rank => { ToyStep(rank, trace, _ => 4); return 0; }, Patient);

        var clock = Stopwatch.StartNew();
        var act = () => MeshRunner.Run(DeviceMesh.Create(1, 2), rank => { ToyStep(rank, trace, id => id == 1 ? 6 : 4); return 0; }, Patient);

        var error = act.Should().Throw<TraceDivergenceException>().Which;
        clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(10), "the divergent rank stops before the collective, the others are aborted");
        error.Rank.Should().Be(1);
        error.Message.Should().Contain("rank 1").And.Contain("#0").And.Contain("tp AllGather [2, 4] Float32").And.Contain("tp AllGather [2, 6] Float32");
    }

    [Fact]
    public void Capture_exports_one_track_per_device_with_collective_spans_and_bytes()
    {
        var trace = new StepTrace();
        MeshRunner.Run(DeviceMesh.Create(1, 2), rank => { ToyStep(rank, trace, _ => 4); return 0; }, Patient);
        using var dir = new TempDirectory();
        var path = dir.File("trace.json");

        TraceExport.WriteChromeTrace(path, trace.Captured, "toy");

        using var json = JsonDocument.Parse(File.ReadAllText(path));
        var events = json.RootElement.GetProperty("traceEvents").EnumerateArray().ToArray();
        events.Where(e => e.GetProperty("name").GetString() == "thread_name").Select(e => e.GetProperty("tid").GetInt32()).Should().Equal(0, 1);
        var collectives = events.Where(e => e.TryGetProperty("cat", out var c) && c.GetString() == "collective").ToArray();
        collectives.Should().HaveCount(4);
        collectives[0].GetProperty("args").GetProperty("bytes_sent").GetInt64().Should().Be(32);
        collectives.Should().OnlyContain(e => e.GetProperty("dur").GetDouble() >= 0);
    }
}
