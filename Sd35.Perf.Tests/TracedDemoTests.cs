using System.Globalization;
using System.Text;
using FluentAssertions;
using Sd35.Hosting;
using Sd35.Mesh;
using Sd35.Mesh.Tracing;
using Sd35.Perf.Harness;
using Sd35.Pipeline;
using Xunit.Abstractions;

namespace Sd35.Perf.Tests;

/// <summary>
/// The traced demo fixture of one config (the reference's <c>yes_traced</c>/<c>no_traced</c> demo): builds a traced and
/// an untraced pipeline once, runs the traced warm-up generation (which captures every rank's step program) and writes
/// the capture as Chrome/Perfetto trace-event JSON under TestResults/traced-demo/&lt;id&gt;/trace.json. Components: the
/// tiny reference pipeline of fixtures/reference (the demo's built-in default), or the diffusers folder named by
/// SD35_DEMO_MODEL. Both pipelines keep their models resident (<see cref="ModelResidency.Resident"/>): the warm-up
/// places each device's weights on the mesh once, and every test's generation reuses them. Disposed with the fixture.
/// </summary>
public abstract class TracedDemoFixture : IDisposable
{
    public string Id { get; }
    public PipelineComponents Components { get; }
    public StableDiffusion3Pipeline Traced { get; }
    public StableDiffusion3Pipeline Untraced { get; }
    public string Folder { get; }
    public string TracePath { get; }
    public int Size { get; }

    protected TracedDemoFixture(string id)
    {
        Id = id;
        var model = Environment.GetEnvironmentVariable("SD35_DEMO_MODEL");
        Components = model is { Length: > 0 }
            ? PipelineComponents.From(new ModelSource { Model = model })
            : PipelineComponents.From(ModelSource.BuiltIn);
        Size = model is { Length: > 0 } ? 1024 : 64;
        var config = ParallelConfig.Parse(id);
        // This test process keeps its own CPU runtime set-up (HostAsIs); both pipelines share the components.
        var settings = new PipelineSettings { Parallel = config, Residency = ModelResidency.Resident, Process = ProcessSetup.HostAsIs };
        Traced = PipelineFactory.Create(settings with { Trace = new StepTrace() }, Components);
        Untraced = PipelineFactory.Create(settings, Components);
        Folder = Path.Combine(RepoPaths.Root, "TestResults", "traced-demo", id);
        Directory.CreateDirectory(Folder);
        using (Traced.Generate(Request(PerfPrompts.Warmup))) { }
        using (Untraced.Generate(Request(PerfPrompts.Warmup))) { } // places the untraced pipeline's weights too
        TracePath = Path.Combine(Folder, "trace.json");
        TraceExport.WriteChromeTrace(TracePath, Traced.Trace!.Captured, $"sd35_{id} traced demo");
    }

    public void Dispose()
    {
        Traced.Dispose();
        Untraced.Dispose();
        GC.SuppressFinalize(this);
    }

    public GenerationRequest Request(string prompt) => new()
    {
        Prompt = prompt, Steps = 4, GuidanceScale = 3.5, Seed = 0, Width = Size, Height = Size, MaxSequenceLength = 32,
    };
}

/// <summary>The demo tests of one config: <c>yes_traced</c> runs on the captured trace, <c>no_traced</c> without it.</summary>
public abstract class TracedDemoTests(TracedDemoFixture fixture, ITestOutputHelper output)
{
    const string Prompt = "An epic, high-definition cinematic shot of a rustic snowy cabin glowing warmly at dusk";

#pragma warning disable IDE1006 // yes_traced / no_traced are the reference's ids: `--filter "<id>&yes_traced"` selects by them
    [Fact]
    public void yes_traced_steps_follow_the_capture_and_the_image_is_bit_identical_to_untraced()
    {
        long checkedBefore = fixture.Traced.Trace!.CheckedSteps;
        int loads = 0;
        var count = GenerationObserver.Of(modelLoaded: _ => Interlocked.Increment(ref loads));
        using var traced = fixture.Traced.Generate(fixture.Request(Prompt), count);
        using var untraced = fixture.Untraced.Generate(fixture.Request(Prompt), count);

        loads.Should().Be(0, "the fixture placed every device's weights once; the demo's generations reuse them");

        fixture.Traced.Trace.CheckedSteps.Should().Be(checkedBefore + 4L * ParallelConfig.Parse(fixture.Id).DeviceCount,
            "every step of every rank is checked against the warm-up's capture");
        traced.Image.Equals(untraced.Image).Should().BeTrue("tracing only watches the collectives; it must not change a bit");
        Save("yes_traced", traced, untraced);
    }

    [Fact]
    public void no_traced_generates_the_image_without_a_capture()
    {
        // What tracing changes is that every rank's step is checked against the capture; an untraced generation checks
        // none (it must not reach the traced pipeline's trace) and makes the same image as a traced one.
        long checkedBefore = fixture.Traced.Trace!.CheckedSteps;
        int capturedBefore = fixture.Traced.Trace.Captured.Count;
        using var untraced = fixture.Untraced.Generate(fixture.Request(Prompt));
        fixture.Traced.Trace.CheckedSteps.Should().Be(checkedBefore, "an untraced generation checks no step");
        fixture.Traced.Trace.Captured.Count.Should().Be(capturedBefore);
        untraced.Timings.StepSeconds.Should().HaveCount(4);
        using var traced = fixture.Traced.Generate(fixture.Request(Prompt));
        fixture.Traced.Trace.CheckedSteps.Should().Be(checkedBefore + 4L * ParallelConfig.Parse(fixture.Id).DeviceCount, "the traced one checks every step of every rank");
        untraced.Image.Equals(traced.Image).Should().BeTrue("the same image with and without the trace");
        Save("no_traced", untraced, null);
    }
#pragma warning restore IDE1006

    /// <summary>Saves the image and the timing table (per-step seconds traced and untraced side by side) under TestResults/traced-demo/&lt;id&gt;.</summary>
    void Save(string name, GenerationResult first, GenerationResult? untraced)
    {
        var png = Path.Combine(fixture.Folder, $"sd35_{fixture.Size}_{fixture.Size}_{name}.png");
        ImageOutput.SavePng(ImageOutput.FromUnitRange(first.Image)[0], png);
        var table = new StringBuilder();
        table.AppendLine(CultureInfo.InvariantCulture, $"{fixture.Components.Description} on {fixture.Id}, {fixture.Size}², 4 steps; trace {fixture.TracePath}");
        table.AppendLine(untraced is null ? "step  seconds" : "step  traced s  untraced s");
        for (int i = 0; i < first.Timings.StepSeconds.Count; i++)
            table.AppendLine(untraced is null
                ? FormattableString.Invariant($"{i,4}  {first.Timings.StepSeconds[i],7:F4}")
                : FormattableString.Invariant($"{i,4}  {first.Timings.StepSeconds[i],8:F4}  {untraced.Timings.StepSeconds[i],10:F4}"));
        table.AppendLine(first.Timings.ToTable());
        File.WriteAllText(Path.Combine(fixture.Folder, $"{name}_timings.txt"), table.ToString());
        output.WriteLine(table.ToString());
        output.WriteLine($"image: {png}");
    }
}

#pragma warning disable IDE1006 // class names carry config ids, so `--filter "<id>&yes_traced"` selects one config's traced demo
public sealed class n150_cfg1_sp1_tp1_demo_fixture() : TracedDemoFixture("n150_cfg1_sp1_tp1");
public sealed class t3k_cfg2_sp2_tp2_demo_fixture() : TracedDemoFixture("t3k_cfg2_sp2_tp2");
public sealed class tg_cfg2_sp4_tp4_demo_fixture() : TracedDemoFixture("tg_cfg2_sp4_tp4");

public sealed class n150_cfg1_sp1_tp1_demo(n150_cfg1_sp1_tp1_demo_fixture f, ITestOutputHelper o) : TracedDemoTests(f, o), IClassFixture<n150_cfg1_sp1_tp1_demo_fixture>;
public sealed class t3k_cfg2_sp2_tp2_demo(t3k_cfg2_sp2_tp2_demo_fixture f, ITestOutputHelper o) : TracedDemoTests(f, o), IClassFixture<t3k_cfg2_sp2_tp2_demo_fixture>;
public sealed class tg_cfg2_sp4_tp4_demo(tg_cfg2_sp4_tp4_demo_fixture f, ITestOutputHelper o) : TracedDemoTests(f, o), IClassFixture<tg_cfg2_sp4_tp4_demo_fixture>;
