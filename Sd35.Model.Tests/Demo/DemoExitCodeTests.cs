using System.Text.Json.Nodes;
using FluentAssertions;
using Sd35.Tests.TestSupport;
using Xunit.Abstractions;

namespace Sd35.Tests.Demo;

/// <summary>
/// The built demo as a child process: exact exit codes (0 done, 2 bad input, 1 internal error, 130 interrupted),
/// one line on stderr for bad input, never a stack trace or libtorch's NNPACK noise, and nothing left behind.
/// </summary>
public class DemoExitCodeTests(ITestOutputHelper log)
{
    static readonly string[] Tiny = ["--steps", "1", "--width", "32", "--height", "32"];

    DemoProcess.Result Run(TempDirectory dir, params string[] args)
    {
        var result = DemoProcess.Run(args, dir.Path);
        log.WriteLine(result.ToString());
        result.Stderr.Should().NotContain("   at ", "no stack trace reaches a user").And.NotContain("NNPACK").And.NotContain("Unhandled");
        return result;
    }

    static void OneLine(DemoProcess.Result result, string expected)
    {
        result.ExitCode.Should().Be(2, result.ToString());
        var lines = result.Stderr.TrimEnd().Split('\n');
        lines.Should().HaveCount(1, result.Stderr);
        lines[0].Should().StartWith("error: ").And.Contain(expected);
    }

    [Fact]
    public void A_run_exits_0_and_leaves_exactly_the_png()
    {
        using var dir = new TempDirectory();
        var result = Run(dir, [.. Tiny, "--out", dir.File("a.png")]);
        result.ExitCode.Should().Be(0, result.ToString());
        result.Stderr.Should().BeEmpty();
        Directory.EnumerateFileSystemEntries(dir.Path).Should().Equal(dir.File("a.png"));
    }

    [Theory]
    [InlineData("--stpes", "3", "Did you mean '--steps'?")]
    [InlineData("--steps", "zero", "'--steps'")]
    [InlineData("--guidance", "1e20", "--guidance '1e20': must be a number in 0..100")]
    [InlineData("--width", "4096", "--width: 4096 pixels is beyond the model's position-embedding grid; at most 192 pixels")]
    [InlineData("--out", "/sys/kernel/sd35.png", "--out: '/sys/kernel/sd35.png' cannot be written")]
    public void Bad_input_exits_2_with_one_line_naming_it(string option, string value, string expected)
    {
        using var dir = new TempDirectory();
        OneLine(Run(dir, option, value), expected);
        Directory.EnumerateFileSystemEntries(dir.Path).Should().BeEmpty();
    }

    [Fact]
    public void An_output_path_that_is_a_directory_exits_2_before_generation()
    {
        using var dir = new TempDirectory();
        var folder = Directory.CreateDirectory(dir.File("taken.png")).FullName;
        var result = Run(dir, [.. Tiny, "--out", folder]);
        OneLine(result, $"--out: '{folder}' is a directory");
        result.Stdout.Should().NotContain("denoising step");
    }

    [Fact]
    public void A_corrupt_vae_checkpoint_exits_2_before_any_denoising()
    {
        using var model = new TinyModelCopy();
        using var dir = new TempDirectory();
        var weights = Path.Combine(model.Vae, "diffusion_pytorch_model.safetensors");
        using (var stream = new FileStream(weights, FileMode.Open)) stream.SetLength(stream.Length - 7);
        var result = Run(dir, [.. Tiny, "--model", model.Root, "--out", dir.File("a.png")]);
        OneLine(result, weights);
        result.Stdout.Should().NotContain("denoising step");
        Directory.EnumerateFileSystemEntries(dir.Path).Should().BeEmpty();
    }

    [Fact]
    public void A_config_value_of_the_wrong_type_exits_2_naming_the_file()
    {
        using var model = new TinyModelCopy();
        using var dir = new TempDirectory();
        var config = Path.Combine(model.Transformer, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(config))!;
        json["num_layers"] = "three";
        File.WriteAllText(config, json.ToJsonString());
        var result = Run(dir, [.. Tiny, "--model", model.Root, "--out", dir.File("a.png")]);
        result.ExitCode.Should().Be(2, result.ToString());
        result.Stderr.Should().Contain(config);
    }

    [Fact]
    public void Non_finite_weights_exit_1_with_the_step_and_a_log_and_write_nothing()
    {
        using var model = new TinyModelCopy();
        using var dir = new TempDirectory();
        var weights = Path.Combine(model.Transformer, "diffusion_pytorch_model.safetensors");
        var state = Golden.ReadAll(weights);
        state["proj_out.bias"] = TorchSharp.torch.full_like(state["proj_out.bias"], float.NaN);
        Sd35.Tensors.Checkpoints.SafetensorsWriter.Write(weights, state);
        var result = Run(dir, [.. Tiny, "--model", model.Root, "--out", dir.File("a.png")]);
        result.ExitCode.Should().Be(1, result.ToString());
        var lines = result.Stderr.TrimEnd().Split('\n');
        lines[0].Should().StartWith("error: non-finite values after denoising step 1: ").And.Contain("NaN");
        lines[1].Should().StartWith("details: ");
        var logFile = lines[1]["details: ".Length..].Trim();
        File.ReadAllText(logFile).Should().Contain("NonFiniteException").And.Contain("   at ");
        File.Delete(logFile);
        Directory.EnumerateFileSystemEntries(dir.Path).Should().BeEmpty();
    }

    [Fact]
    public async Task Sigint_exits_130_with_interrupted_and_leaves_nothing()
    {
        using var dir = new TempDirectory();
        using var process = DemoProcess.Start(["--steps", "1000", "--width", "32", "--height", "32", "--out", dir.File("a.png")], dir.Path, interruptible: true);
        var stderr = process.StandardError.ReadToEndAsync();
        string? line;
        while ((line = await process.StandardOutput.ReadLineAsync()) is not null && !line.StartsWith("denoising step")) { }
        line.Should().NotBeNull("the demo should reach the denoising loop");
        DemoProcess.Interrupt(process);
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);   // never leave a 1000-step demo running behind a failed test
            throw new TimeoutException("the demo did not end within 60 s of SIGINT");
        }
        var errors = await stderr;
        log.WriteLine(errors);
        process.ExitCode.Should().Be(130);
        errors.Should().Contain("interrupted").And.NotContain("   at ");
        Directory.EnumerateFileSystemEntries(dir.Path).Should().BeEmpty();
    }

    [Fact]
    public void Help_and_version_exit_0()
    {
        using var dir = new TempDirectory();
        var help = Run(dir, "--help");
        help.ExitCode.Should().Be(0);
        help.Stdout.Should().Contain("--guidance").And.Contain("0..100").And.Contain("--steps").And.Contain("1..1000");
        Run(dir, "--version").ExitCode.Should().Be(0);
    }
}
