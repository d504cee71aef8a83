using System.Diagnostics;
using System.Text.Json;
using FluentAssertions;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.Mesh.Tracing;
using Sd35.Layers;
using Sd35.Profiling;
using Sd35.Tests.TestSupport;
using Sd35.Tools.Profiling;
using static TorchSharp.torch;

namespace Sd35.Tests.Mesh.Tracing;

/// <summary>The step trace: capture on the first step, check later steps collective by collective, export for Perfetto.</summary>
[Collection(MeshRunCollection.Name)]
public class StepTraceTests
{
    static readonly MeshRunOptions Patient = new() { CollectiveTimeout = TimeSpan.FromSeconds(60) };

    /// <summary>A toy step: a linear, a tp AllGather, a layer norm and an AllReduce, sizes from <paramref name="width"/>.</summary>
    static void ToyStep(MeshRank rank, StepTrace trace, Func<int, long> width)
    {
        var tp = rank.Group("tp", rank.Mesh.Ids);
        using var section = Instrumentation.InSection(PerfSections.Step);
        using var step = trace.Step(rank.Id.Value, "guided");
        using var scope = NewDisposeScope();
        var x = Kernels.Linear(ones(2, 3), ones(width(rank.Id.Value), 3));
        var gathered = tp.AllGather(x, 1);
        Kernels.LayerNorm(gathered, 1e-6);
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
    public void Capture_holds_every_op_and_collective_in_program_order_with_shapes_work_and_spans()
    {
        var trace = new StepTrace();
        MeshRunner.Run(DeviceMesh.Create(1, 2), rank => { ToyStep(rank, trace, _ => 4); return 0; }, Patient);

        var program = trace.Captured[0];
        program.Events.Select(e => e switch { TracedOp op => op.Name, TracedCollective c => c.Call.Op, _ => "?" })
            .Should().Equal("linear", "AllGather", "layer_norm", "AllReduce");
        var linear = program.Ops[0];
        (linear.OutputShape, linear.DType, linear.Kind, linear.Section).Should().Be(("[2, 4]", "Float32", OpKind.Gemm, PerfSections.Step));
        linear.InputShapes.Should().Equal("[2, 3]", "[4, 3]");
        linear.Flops.Should().Be(2.0 * 2 * 4 * 3);
        linear.StartObserved.Should().BeTrue();
        program.Ops[1].InputShapes.Should().Equal("[2, 8]");
        program.Events.Zip(program.Events.Skip(1)).Should().OnlyContain(p => p.First.EndTimestamp <= p.Second.StartTimestamp, "one rank's events follow each other");
        program.Events.Should().OnlyContain(e => e.StartTimestamp >= program.StartTimestamp && e.EndTimestamp <= program.EndTimestamp);
    }

    [Fact]
    public void The_cost_model_recorder_and_the_trace_share_the_one_hook_and_both_see_everything()
    {
        var trace = new StepTrace();
        var recorders = new System.Collections.Concurrent.ConcurrentDictionary<int, OpRecorder>();
        MeshRunner.Run(DeviceMesh.Create(1, 2), rank =>
        {
            var recorder = recorders[rank.Id.Value] = new OpRecorder(rank.Id.Value);
            using var recording = recorder.Use();
            ToyStep(rank, trace, _ => 4);
            return 0;
        }, Patient);

        var ops = recorders[1].Ops;
        ops.Select(o => (o.Section, o.Name)).Should().Equal((PerfSections.Step, "linear"), (PerfSections.Step, "layer_norm"));
        recorders[1].Collectives.Select(c => (c.Op, c.Label, c.BytesSent)).Should().Equal(("AllGather", "tp", 32L), ("AllReduce", "tp", 32L));
        trace.Captured.Single(p => p.Rank == 1).Events.Should().HaveCount(4);
        trace.Captured.Single(p => p.Rank == 1).Ops.Select(o => o.Section).Should().Equal(PerfSections.Step, PerfSections.Step);
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
        var ops = events.Where(e => e.TryGetProperty("cat", out var c) && c.GetString() == "op").ToArray();
        ops.Select(e => (e.GetProperty("tid").GetInt32(), e.GetProperty("name").GetString())).Should().Equal(
            (0, "linear"), (0, "layer_norm"), (1, "linear"), (1, "layer_norm"));
        var args = ops[0].GetProperty("args");
        (args.GetProperty("inputs").GetString(), args.GetProperty("output").GetString(), args.GetProperty("flops").GetDouble())
            .Should().Be(("[2, 3] [4, 3]", "[2, 4]", 48.0));
        events.Where(e => e.TryGetProperty("cat", out var c) && c.GetString() == "step").Should().HaveCount(2);
    }

    [Fact]
    public void Ring_attention_blocks_and_rms_norms_span_from_their_own_start()
    {
        var trace = new StepTrace();
        MeshRunner.Run(DeviceMesh.Create(1, 2), rank =>
        {
            var sp = rank.Group("sp", rank.Mesh.Ids);
            using var section = Instrumentation.InSection(PerfSections.Step);
            using var step = trace.Step(rank.Id.Value, "guided");
            using var scope = NewDisposeScope();
            var image = ones(1, 2, 4, 8);
            var prompt = ones(1, 2, 3, 8);
            using var norm = new Sd35.Layers.Normalization.RmsNorm(8, 1e-6);
            var q = norm.forward(image);
            Sd35.Layers.Attention.RingJointAttention.Forward(q, image, image, prompt, prompt, prompt, sp);
            step.Complete();
            return 0;
        }, Patient);

        var ops = trace.Captured.SelectMany(p => p.Ops).Where(o => o.Name is "sdpa" or "rms_norm").ToArray();
        ops.Select(o => o.Name).Should().Contain("rms_norm").And.Contain("sdpa");
        ops.Should().OnlyContain(o => o.StartObserved, "their code takes the start before computing, so the span is the op's own, not the glue before it");
    }

    /// <summary>
    /// A backend's side of two collectives in one step: an all-reduce receiving two parts, then a ring exchange of
    /// <paramref name="block"/> elements. Returns what each buffer held when handed out, then marks it with its own value.
    /// </summary>
    static (float Pieces, float Sums, float Block) BackendStep(StepTrace trace, long block)
    {
        using var step = trace.Step(0, "guided");
        using var scope = NewDisposeScope();
        var allReduce = Instrumentation.BeginCollective("tp", "AllReduce", [2, 4], "Float32");
        var pieces = Instrumentation.ReceiveBuffer([2, 2], float32);
        var sums = Instrumentation.ReceiveBuffer([8], float32);
        allReduce.End([0, 1], 32, 16, 16, isAsync: false);
        var exchange = Instrumentation.BeginCollective("sp", "SendReceive", [3], "Float32");
        var received = Instrumentation.ReceiveBuffer([block], float32);
        exchange.End([0, 1], 12, 12, block * 4, isAsync: true);
        var held = (pieces[1, 1].item<float>(), sums[7].item<float>(), received[block - 1].item<float>());
        pieces.fill_(1);
        sums.fill_(2);
        received.fill_(100 + block);
        step.Complete();
        return held;
    }

    [Fact]
    public void Receive_buffers_are_placed_by_the_capture_and_every_later_step_receives_into_the_same_memory()
    {
        using var trace = new StepTrace();
        var held = Enumerable.Range(0, 3).Select(_ => BackendStep(trace, 3)).ToArray();

        held.Skip(1).Should().AllBeEquivalentTo((1f, 2f, 103f), "each collective's part lands in the memory it had the step before, each in its own");
        (trace.ReceiveBuffersPlaced, trace.ReceiveBuffersReused, trace.ReceiveBufferBytes).Should().Be((3L, 6L, (4 + 8 + 3) * 4L));

        using (var untraced = Instrumentation.ReceiveBuffer([3], float32))
        {
            untraced.fill_(-1);
            BackendStep(trace, 3).Block.Should().Be(103, "outside a traced step a backend gets new memory");
        }

        // Another rank sends a longer block this time (this rank's own call is unchanged, so the check passes): placed again.
        var longer = BackendStep(trace, 5);
        (longer.Pieces, longer.Sums).Should().Be((1f, 2f));
        (trace.ReceiveBuffersPlaced, trace.ReceiveBuffersReused).Should().Be((4L, 11L));
        BackendStep(trace, 5).Block.Should().Be(105);

        trace.Dispose();
        trace.ReceiveBufferBytes.Should().Be(0);
        FluentActions.Invoking(() => trace.Step(0, "guided")).Should().Throw<ObjectDisposedException>();
    }
}
