using System.CommandLine;
using System.Diagnostics;
using FluentAssertions;

namespace Sd35.Perf.Tests;

/// <summary>
/// Sd35.Perf's command line: every command answers <c>--help</c> with exit code 0, meets an unknown option or bad
/// input with one line that names it and exit code 2 (never a stack trace), and the renamed commands still run.
/// Parsing is checked in this process (it loads nothing); commands that run start Sd35.Perf.dll, as a user would.
/// </summary>
public sealed class PerfCommandLineTests : IDisposable
{
    readonly string _temp = Directory.CreateTempSubdirectory("sd35-perf-cli-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    /// <summary>Every command that runs, by its path (<c>cost-model prediction</c>), from the root itself.</summary>
    static List<string> CommandPaths()
    {
        var paths = new List<string>();
        void Walk(Command command, string path)
        {
            if (command.Subcommands.Count == 0) paths.Add(path);
            foreach (var sub in command.Subcommands) Walk(sub, $"{path} {sub.Name}".Trim());
        }
        Walk(new PerfCommandLine().Root, "");
        return paths;
    }

    public static TheoryData<string> Commands() => new(CommandPaths());

    /// <summary>All but <c>benchmarks</c>, which passes every argument to BenchmarkDotNet (see The_report_and_benchmarks_commands_run).</summary>
    public static TheoryData<string> CommandsWithOwnOptions() => new(CommandPaths().Where(p => p != "benchmarks"));

    [Fact]
    public void Commands_are_kebab_case_nouns_and_model_alone_names_the_diffusion_model()
    {
        var names = CommandPaths();
        names.Should().HaveCountGreaterThanOrEqualTo(16).And.OnlyContain(p => p.Split(' ').All(n => System.Text.RegularExpressions.Regex.IsMatch(n, "^[a-z0-9]+(-[a-z0-9]+)*$")));
        names.Should().Contain(["workload-speed", "op-speed", "block-speed", "step-speed", "step-traffic", "trace-overhead", "load-speed", "mesh-memory",
            "synthetic-model", "synthetic-model-speed", "cost-model prediction", "cost-model validation", "cost-model ranking", "cost-model systems", "report", "benchmarks"]);
        names.Should().NotContain(["model", "quick", "ops", "parts", "step", "traffic", "make-model", "random-model"], "the old names are gone, not aliased");
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void Help_exits_0_and_describes_the_command(string command)
    {
        var (code, output, error) = InProcess($"{command} --help");

        code.Should().Be(0, error);
        output.Should().Contain("Usage:").And.Contain($" {command} ");
        error.Should().BeEmpty();
    }

    [Theory]
    [MemberData(nameof(CommandsWithOwnOptions))]
    public void An_unknown_option_is_one_line_naming_it_and_exit_code_2(string command)
    {
        var (code, output, error) = InProcess($"{command} --no-such-option");

        code.Should().Be(2);
        error.TrimEnd().Should().StartWith("error: ").And.Contain("--no-such-option").And.NotContain("\n", "one line");
        output.Should().BeEmpty("nothing ran");
    }

    [Theory]
    [InlineData("", "Required command")]
    [InlineData("quick", "'quick' is not a command (see --help)")]
    [InlineData("model --config t3k_cfg2_sp2_tp2 --system t3k", "'model' is not")]
    [InlineData("op-speed --repeat many", "--repeat must be a positive whole number; got 'many'")]
    [InlineData("op-speed 5", "'5' is not an option, argument or command of 'op-speed'")]
    [InlineData("workload-speed --min-of-gemm 0", "--min-of-gemm must be a fraction above 0; got 0")]
    [InlineData("workload-speed nope", "Argument 'nope' not recognized. Must be one of: 'mmdit_small' 'block_sd35_large' 'block_sd35_large_bf16w' 'block_sd35_large_q8_0w' 'block_sd35_large_bf16' 'gemm'")]
    [InlineData("step-speed nope_cfg", "'nope_cfg' is not a parallel-config id")]
    [InlineData("step-traffic t3k_cfg2_sp2_tp2 nope_cfg", "'nope_cfg' is not a parallel-config id")]
    [InlineData("mesh-memory --model /nonexistent/sd35", "--model '/nonexistent/sd35' is not a folder")]
    [InlineData("mesh-memory --model . --parallel nope_cfg", "'nope_cfg' is not a parallel-config id")]
    [InlineData("load-speed --model . --components text_encoder,vea", "--components 'text_encoder,vea': unknown 'vea'")]
    [InlineData("synthetic-model --preset tiny", "synthetic-model needs either --out DIR or --verify DIR")]
    [InlineData("synthetic-model --out x --preset huge", "--preset: Argument 'huge' not recognized")]
    [InlineData("synthetic-model --out x --format gguf --quantize q4_k", "--quantize Q4_K: block types are Q8_0, Q5_0, Q5_1, Q4_0, Q4_1")]
    [InlineData("synthetic-model --out x --format gguf --quantize f8_e4m3", "--quantize F8_E4M3: GGUF has no fp8 type")]
    [InlineData("synthetic-model-speed --device gpu", "--device 'gpu' is not cpu, cuda or cuda:N")]
    [InlineData("synthetic-model-speed --size 0", "--size must be a positive whole number; got '0'")]
    [InlineData("cost-model prediction --config t3k_cfg2_sp2_tp2", "Option '--system' is required")]
    [InlineData("report --current x", "Option '--baseline' is required")]
    [InlineData("report --baseline a --current b --threshold 2", "--threshold must be a number between 0 and 1, got '2'")]
    [InlineData("report --baseline a --current b --test ttest", "--test: Argument 'ttest' not recognized")]
    public void Bad_input_is_one_error_line_naming_it_and_exit_code_2(string arguments, string named)
    {
        var (code, output, error) = InProcess(arguments);

        code.Should().Be(2, error);
        error.TrimEnd().Should().StartWith("error: ").And.Contain(named).And.NotContain("\n", "one line");
        output.Should().BeEmpty();
    }

    [Theory]
    [InlineData("mesh-memory --model /nonexistent/sd35", "/nonexistent/sd35")]
    [InlineData("report --baseline /nonexistent/a.json --current /nonexistent/b.json", "/nonexistent/a.json")]
    [InlineData("cost-model prediction --config t3k_cfg2_sp2_tp2 --system no_such_system", "unknown system 'no_such_system'")]
    public async Task The_program_exits_2_with_one_line_and_no_stack_trace(string arguments, string named)
    {
        var (code, output, error) = await Perf(arguments);

        code.Should().Be(2, error);
        error.Trim().Should().StartWith("error: ").And.Contain(named).And.NotContain("\n", "one line");
        (error + output).Should().NotContain("Unhandled exception").And.NotContain("   at ", "no stack trace reaches the user");
    }

    [Fact]
    public async Task The_cost_model_commands_run()
    {
        var json = Path.Combine(_temp, "prediction.json");
        (await Perf($"cost-model prediction --config t3k_cfg2_sp2_tp2 --system t3k --steps 2 --collectives --out {json}")).Should().Match<(int Code, string Output, string Error)>(r => r.Code == 0 && r.Output.Contains("wrote"));
        File.Exists(json).Should().BeTrue();
        var systems = await Perf("cost-model systems");
        systems.Code.Should().Be(0, systems.Error);
        systems.Output.Should().Contain("t3k").And.Contain("galaxy");
    }

    [Fact]
    public async Task A_synthetic_model_is_written_verified_and_measured_under_its_new_names()
    {
        var folder = Path.Combine(_temp, "tiny");
        var written = await Perf($"synthetic-model --out {folder} --preset tiny --seed 3");
        written.Code.Should().Be(0, written.Error);
        written.Output.Should().Contain("done:");

        var verified = await Perf($"synthetic-model --verify {folder} --seed 3");
        verified.Output.Should().Contain(": ok").And.NotContain("DIFFERS");
        verified.Code.Should().Be(0, verified.Output + verified.Error);

        var memory = await Perf($"mesh-memory --model {folder} --parallel n300_cfg1_sp1_tp2");
        memory.Code.Should().Be(0, memory.Error);
        memory.Output.Should().Contain("n300_cfg1_sp1_tp2").And.Contain("one device");

        var loading = await Perf($"load-speed --model {folder} --components vae --fp32");
        loading.Code.Should().Be(0, loading.Error);
        loading.Output.Should().Contain("vae");

        var speed = await Perf($"synthetic-model-speed --preset tiny --size 32 --steps 1 --max-sequence-length 16 --json {Path.Combine(_temp, "speed.json")}");
        speed.Code.Should().Be(0, speed.Error);
        speed.Output.Should().Contain("one step (CFG, batch 2)");
        File.Exists(Path.Combine(_temp, "speed.json")).Should().BeTrue();
    }

    [Fact]
    public async Task A_synthetic_model_is_written_with_a_q8_0_gguf_transformer_that_the_pipeline_reads()
    {
        var folder = Path.Combine(_temp, "tiny-gguf");
        var written = await Perf($"synthetic-model --out {folder} --preset tiny --format gguf --quantize q8_0");
        written.Code.Should().Be(0, written.Error);
        var gguf = Path.Combine(folder, "sd3.5_large-Q8_0.gguf");
        written.Output.Should().Contain(gguf);

        using (var file = Sd35.Tensors.Checkpoints.Checkpoint.Open(gguf))
        {
            var types = file.Keys.GroupBy(k => file.BlockTypeOf(k)?.ToString() ?? file.Entry(k).StorageName).ToDictionary(g => g.Key, g => g.Count());
            types.Should().ContainKey("Q8_0");
            // Every weight whose rows are whole blocks is Q8_0; the others stay as written (BF16), 1-D tensors F32.
            foreach (var key in file.Keys.Where(k => file.BlockTypeOf(k) is null && file.Entry(k).Shape.Length == 2 && k != "pos_embed"))
                (file.Entry(key).Shape[1] % 32).Should().NotBe(0, $"{key} has whole-block rows, so it must be Q8_0");
        }
        var components = Sd35.Pipeline.PipelineComponents.From(new Sd35.Pipeline.ModelSource { Model = folder, Transformer = gguf });
        Sd35.Pipeline.Preflight.CheckModel(components).Should().BeGreaterThanOrEqualTo(0);
    }

    [Fact]
    public async Task The_step_and_workload_commands_run_on_one_device()
    {
        var step = await Perf("step-speed n150_cfg1_sp1_tp1 --repeat 1");
        step.Code.Should().Be(0, step.Error);
        step.Output.Should().Contain("n150_cfg1_sp1_tp1 on the in-process backend");

        // The gate: GEMM against the GEMM run just before it is about 100 %, far above 1 %, far below 100 times itself.
        var workload = await Perf("workload-speed gemm --repeat 1 --min-of-gemm 0.01");
        workload.Code.Should().Be(0, workload.Error);
        workload.Output.Should().MatchRegex(@"\ngemm +\d+ ?%").And.Contain("every workload at or above");
        var below = await Perf("workload-speed gemm --repeat 1 --min-of-gemm 100");
        below.Code.Should().Be(1, "the gate reports a failure");
        below.Output.Should().MatchRegex(@"below .* of gemm: gemm \d");
    }

    [Fact]
    public async Task The_report_and_benchmarks_commands_run()
    {
        var export = Path.Combine(AppContext.BaseDirectory, "TestData", "Sd35.Perf.ComponentBenchmarks-report-full.json");
        var report = await Perf($"report --baseline {export} --current {export} --out {_temp}");
        report.Code.Should().Be(0, report.Error);
        File.Exists(Path.Combine(_temp, "report.md")).Should().BeTrue();

        var list = await Perf("benchmarks --list flat");
        list.Code.Should().Be(0, list.Error);
        list.Output.Should().Contain("Sd35.Perf.TransformerForwardBenchmark.Forward", "every argument after the command goes to BenchmarkDotNet");
        var unknown = await Perf("benchmarks --no-such-option");
        unknown.Code.Should().Be(2, "BenchmarkDotNet ran nothing");
        unknown.Output.Should().Contain("Option 'no-such-option' is unknown", "BenchmarkDotNet's own message");
    }

    static (int Code, string Output, string Error) InProcess(string arguments)
    {
        var (output, error) = (new StringWriter(), new StringWriter());
        int code = PerfCommandLine.Run(Split(arguments), output, error);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>Runs Sd35.Perf.dll in a process of its own, on libtorch's own CPU settings (the settings are the commands' business, not this test's).</summary>
    static async Task<(int Code, string Output, string Error)> Perf(string arguments)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Sd35.Perf.dll"));
        foreach (var a in Split(arguments)) start.ArgumentList.Add(a);
        start.Environment["SD35_CPU_RUNTIME"] = "default";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(limit.Token);
        return (process.ExitCode, await output, error);
    }

    static string[] Split(string arguments) => arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);
}
