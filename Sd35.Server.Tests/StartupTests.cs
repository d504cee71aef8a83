using System.Diagnostics;
using FluentAssertions;
using Sd35.Tensors;
using Sd35.Tests.TestSupport;

namespace Sd35.Server.Tests;

/// <summary>
/// The server builds its pipeline through the library's front door at start-up: a model folder that cannot run stops
/// it before it listens (exit 2, one line naming the file), and <c>SD35_LIBTORCH_DIR</c> chooses its libtorch.
/// </summary>
public sealed class StartupTests
{
    static readonly TimeSpan Limit = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task A_model_folder_with_a_damaged_checkpoint_stops_the_start_with_one_line_naming_the_file()
    {
        using var model = new TinyModelCopy();
        // A header that says more than the file holds: found only by reading the checkpoint (the preflight), not the configs.
        var weights = Path.Combine(model.Transformer, "diffusion_pytorch_model.safetensors");
        using (var stream = new FileStream(weights, FileMode.Open)) stream.SetLength(stream.Length / 2);

        var (exitCode, stdout, stderr) = await RunAsync(["--model", model.Root], environment: null);

        exitCode.Should().Be(2, stderr + stdout);
        stderr.TrimEnd().Split('\n').Should().ContainSingle().Which.Should().StartWith("error: ").And.Contain(weights);
        stdout.Should().NotContain("Now listening");
    }

    [Fact]
    public async Task A_quantization_the_build_cannot_hold_stops_the_start_with_one_line_listing_the_supported_ones()
    {
        var (exitCode, stdout, stderr) = await RunAsync(["--quantize", "q4_k"], environment: null);

        exitCode.Should().Be(2, stderr + stdout);
        stderr.TrimEnd().Split('\n').Should().ContainSingle().Which.Should().StartWith("error: ").And.Contain("--quantize 'q4_k'").And.Contain("q8_0, q5_0, q5_1, q4_0, q4_1");
        stdout.Should().NotContain("Now listening");
    }

    [Fact]
    public async Task Sd35_libtorch_dir_without_a_libtorch_stops_the_start_with_one_line_naming_it()
    {
        var empty = Directory.CreateTempSubdirectory("sd35-no-libtorch-").FullName;
        try
        {
            var (exitCode, stdout, stderr) = await RunAsync([], new() { [LibTorchRuntime.EnvironmentVariable] = empty });

            exitCode.Should().Be(2, stderr + stdout);
            stderr.TrimEnd().Split('\n').Should().ContainSingle().Which.Should().StartWith("error: ").And.Contain(LibTorchRuntime.EnvironmentVariable).And.Contain(empty);
            stdout.Should().NotContain("Now listening");
        }
        finally
        {
            Directory.Delete(empty);
        }
    }

    [Fact]
    public async Task Sd35_libtorch_dir_chooses_the_libtorch_the_server_runs_on()
    {
        // The packaged libtorch's own folder, named explicitly: loaded by full path from there, and said so at start.
        var packaged = Path.GetDirectoryName(Directory.EnumerateFiles(AppContext.BaseDirectory, "libtorch_cpu.so", SearchOption.AllDirectories).First())!;
        using var server = Start([], new() { [LibTorchRuntime.EnvironmentVariable] = packaged });
        var output = new System.Text.StringBuilder();
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Read(string? line)
        {
            if (line is null) return;
            lock (output) output.AppendLine(line);
            if (line.Contains("Now listening")) listening.TrySetResult();
        }
        server.OutputDataReceived += (_, e) => Read(e.Data);
        server.ErrorDataReceived += (_, e) => Read(e.Data);
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            var first = await Task.WhenAny(listening.Task, server.WaitForExitAsync(), Task.Delay(Limit));
            string text;
            lock (output) text = output.ToString();
            first.Should().Be(listening.Task, text);
            text.Should().Contain($"runtime: libtorch from {packaged}");
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    static Process Start(string[] args, Dictionary<string, string>? environment)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "Sd35.Server.dll"), "--urls", "http://127.0.0.1:0", .. args])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var name in new[] { "PMI_RANK", "PMI_SIZE", "PMI_FD", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", LibTorchRuntime.EnvironmentVariable })
            start.Environment.Remove(name);
        foreach (var (name, value) in environment ?? []) start.Environment[name] = value;
        return Process.Start(start)!;
    }

    static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string[] args, Dictionary<string, string>? environment)
    {
        using var server = Start(args, environment);
        var stdout = server.StandardOutput.ReadToEndAsync();
        var stderr = server.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(Limit);
        try { await server.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException)
        {
            server.Kill(entireProcessTree: true);
            throw new TimeoutException($"the server neither started nor stopped within {Limit}: {await stdout}{await stderr}");
        }
        return (server.ExitCode, await stdout, await stderr);
    }
}
