using System.Text.Json;
using FluentAssertions;
using Sd35.Demo;
using Sd35.Errors;
using Sd35.Tests.TestSupport;

namespace Sd35.Tests.Demo;

/// <summary>The demo's <c>--traced</c> and <c>--trace-out</c> switches: capture, check, the Perfetto file, and bad paths.</summary>
public class DemoTraceTests
{
    [Fact]
    public void Traced_run_on_a_mesh_captures_checks_later_steps_writes_the_perfetto_file_and_says_so_in_the_timing_table()
    {
        using var dir = new TempDirectory();
        var png = dir.File("out.png");
        var trace = dir.File("trace.json");
        var output = new StringWriter();
        var options = DemoOptions.Parse(["--parallel", "n300_cfg1_sp1_tp2", "--steps", "3", "--width", "32", "--height", "32", "--traced", "--compute-dtype", "float32", "--trace-out", trace, "--out", png]);

        new DemoRunner(output).Run(options).Should().Be(0);

        // Two devices, one step kind (guided): the first step captures, the other two are checked on both devices.
        output.ToString().Should().Contain("timings (traced)").And.Contain("trace: 2 device step programs captured (guided), 4 device steps checked against them")
            .And.Contain($"wrote {trace}");
        using var json = JsonDocument.Parse(File.ReadAllText(trace));
        var events = json.RootElement.GetProperty("traceEvents").EnumerateArray().ToArray();
        string? Category(JsonElement e) => e.TryGetProperty("cat", out var c) ? c.GetString() : null;
        events.Where(e => Category(e) == "step").Select(e => e.GetProperty("tid").GetInt32()).Should().Equal(0, 1);
        var ops = events.Where(e => Category(e) == "op").ToArray();
        ops.Select(e => e.GetProperty("name").GetString()).Should().Contain(["linear", "sdpa", "layer_norm"]);
        ops.Should().OnlyContain(e => e.GetProperty("args").GetProperty("dtype").GetString() == "Float32" && e.GetProperty("dur").GetDouble() >= 0);
        var collectives = events.Where(e => Category(e) == "collective").ToArray();
        collectives.Should().NotBeEmpty().And.OnlyContain(e => e.GetProperty("name").GetString()!.StartsWith("tp ") || e.GetProperty("name").GetString()!.StartsWith("cfg "));
        collectives.Where(e => e.GetProperty("name").GetString()!.StartsWith("tp ")).Should()
            .OnlyContain(e => e.GetProperty("args").GetProperty("bytes_sent").GetInt64() > 0);
    }

    [Fact]
    public void Untraced_run_says_so_in_the_timing_table()
    {
        using var dir = new TempDirectory();
        var output = new StringWriter();
        new DemoRunner(output).Run(DemoOptions.Parse(["--steps", "1", "--width", "16", "--height", "16", "--out", dir.File("out.png")])).Should().Be(0);
        output.ToString().Should().Contain("timings (untraced)");
    }

    [Fact]
    public void Trace_out_implies_traced_and_must_name_a_json_file()
    {
        DemoOptions.Parse(["--trace-out", "t.json"]).Traced.Should().BeTrue();
        DemoOptions.Parse(["--traced"]).Should().Match<DemoOptions>(o => o.Traced && o.TraceOut == null);
        DemoOptions.Parse([]).Traced.Should().BeFalse();
        var act = () => DemoOptions.Parse(["--trace-out", "trace.txt"]);
        act.Should().Throw<CommandLineException>().Which.Message.Should().Be("--trace-out 'trace.txt': must name a .json file");
    }

    [Theory]
    [InlineData("/sys/kernel/sd35-trace.json", "cannot be written")]
    [InlineData("/nonexistent-folder/trace.json", "does not exist")]
    public void Unwritable_trace_out_fails_before_any_work_naming_the_option_and_writes_nothing(string path, string problem)
    {
        using var dir = new TempDirectory();
        var output = new StringWriter();
        var act = () => new DemoRunner(output).Run(DemoOptions.Parse(["--steps", "1", "--width", "16", "--height", "16", "--trace-out", path, "--out", dir.File("out.png")]));

        var error = act.Should().Throw<RequestException>().Which;
        (error.Field, error.Message).Should().Match<(string Field, string Message)>(e => e.Field == "trace_out" && e.Message.Contains(path) && e.Message.Contains(problem));
        output.ToString().Should().NotContain("denoising step");
        Directory.EnumerateFileSystemEntries(dir.Path).Should().BeEmpty();
    }
}
