using FluentAssertions;
using Sd35.Demo;
using Sd35.Errors;
using Sd35.Tests.TestSupport;
using SkiaSharp;

namespace Sd35.Tests.Demo;

/// <summary>The demo in-process: options, validation, the built-in default run.</summary>
public class DemoTests
{
    [Fact]
    public void Built_in_default_writes_a_png_of_the_requested_size_and_says_the_weights_are_random()
    {
        using var dir = new TempDirectory();
        var png = dir.File("out.png");
        var output = new StringWriter();
        var options = DemoOptions.Parse(["--prompt", "a red cube", "--steps", "2", "--width", "48", "--height", "32", "--seed", "7", "--out", png]);

        new DemoRunner(output).Run(options).Should().Be(0);

        using var bitmap = SKBitmap.Decode(png);
        bitmap.Should().NotBeNull();
        (bitmap.Width, bitmap.Height).Should().Be((48, 32));
        output.ToString().Should().Contain("RANDOM").And.Contain("denoising step 2/2").And.Contain("steps/s").And.Contain("vae decoding")
            .And.Contain("preflight checks").And.Contain("precision: compute fp32, VAE fp32, weights F32")
            .And.NotContain("measured", "full-precision weights compute in full precision: there is nothing to measure");
        Directory.EnumerateFileSystemEntries(dir.Path).Should().Equal(png);
    }

    [Fact]
    public void Quantized_weights_and_a_given_compute_dtype_are_reported_in_the_start_lines()
    {
        using var dir = new TempDirectory();
        var png = dir.File("out.png");
        var output = new StringWriter();
        var options = DemoOptions.Parse(["--quantize", "q8_0", "--bf16", "--compute-dtype", "float32", "--steps", "1", "--width", "16", "--height", "16", "--out", png]);

        new DemoRunner(output).Run(options).Should().Be(0);

        output.ToString().Should().Contain("precision: compute fp32, VAE fp32, weights BF16, quantized Q8_0").And.NotContain("measured");
        File.Exists(png).Should().BeTrue();
    }

    [Fact]
    public void Without_guidance_one_branch_runs_and_the_png_is_written()
    {
        using var dir = new TempDirectory();
        var png = dir.File("out.png");
        new DemoRunner(TextWriter.Null).Run(DemoOptions.Parse(["--guidance", "1", "--steps", "1", "--width", "16", "--height", "16", "--out", png])).Should().Be(0);
        File.Exists(png).Should().BeTrue();
    }

    [Theory]
    [InlineData(new[] { "--steps", "zero" }, "Cannot parse argument 'zero' for option '--steps'")]
    [InlineData(new[] { "--steps", "0" }, "--steps '0': must be in 1..1000")]
    [InlineData(new[] { "--steps", "1001" }, "--steps '1001': must be in 1..1000")]
    [InlineData(new[] { "--guidance", "-1" }, "--guidance '-1': must be a number in 0..100")]
    [InlineData(new[] { "--guidance", "1e20" }, "--guidance '1e20': must be a number in 0..100")]
    [InlineData(new[] { "--guidance", "NaN" }, "--guidance 'NaN': must be a number in 0..100")]
    [InlineData(new[] { "--max-sequence-length", "513" }, "--max-sequence-length '513': must be in 1..512")]
    [InlineData(new[] { "--width", "-16" }, "--width '-16': must be a positive number of pixels")]
    [InlineData(new[] { "--colour", "red" }, "Unrecognized command or argument '--colour'")]
    [InlineData(new[] { "--stpes", "3" }, "Did you mean '--steps'?")]
    [InlineData(new[] { "--out", "image.jpg" }, "--out 'image.jpg': must name a .png file")]
    [InlineData(new[] { "--prompt" }, "--prompt")]
    [InlineData(new[] { "--parallel", "t3k_cfg9" }, "--parallel 't3k_cfg9'")]
    [InlineData(new[] { "--model", "/nonexistent/sd35" }, "--model '/nonexistent/sd35': is not a folder")]
    [InlineData(new[] { "--quantize", "q4_k" }, "--quantize 'q4_k': is not a quantization this build holds weights in; supported: q8_0, q5_0, q5_1, q4_0, q4_1")]
    [InlineData(new[] { "--compute-dtype", "float16" }, "--compute-dtype 'float16': must be float32 or bfloat16 or auto")]
    public void Bad_arguments_are_one_line_naming_the_option(string[] args, string expected)
    {
        var act = () => DemoOptions.Parse(args);
        act.Should().Throw<CommandLineException>().Which.Message.Should().Contain(expected).And.NotContain("\n");
    }

    [Fact]
    public void Model_folder_with_a_missing_part_names_it_and_writes_nothing()
    {
        using var dir = new TempDirectory();
        var model = Directory.CreateDirectory(Path.Combine(dir.Path, "sd35")).FullName;
        foreach (var part in new[] { "transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3", "tokenizer", "tokenizer_2" })
        {
            Directory.CreateDirectory(Path.Combine(model, part));
            File.WriteAllText(Path.Combine(model, part, "config.json"), "{}");
        }
        var png = dir.File("out.png");
        var act = () => new DemoRunner(TextWriter.Null).Run(DemoOptions.Parse(["--model", model, "--out", png]));
        act.Should().Throw<ModelFolderException>().Which.Message.Should().Contain("'scheduler/'").And.Contain(model).And.NotContain("\n");
        File.Exists(png).Should().BeFalse();
    }

    [Fact]
    public void Invalid_size_is_rejected_before_any_file_is_written()
    {
        using var dir = new TempDirectory();
        var png = dir.File("out.png");
        var act = () => new DemoRunner(TextWriter.Null).Run(DemoOptions.Parse(["--width", "30", "--out", png]));
        act.Should().Throw<RequestException>().Where(e => e.Field == "width").WithMessage("*multiple of 8*30");
        Directory.EnumerateFiles(dir.Path).Should().BeEmpty();
    }

    [Fact]
    public void Cuda_where_there_is_none_is_an_error_naming_cuda_and_nothing_is_written()
    {
        if (TorchSharp.torch.cuda.is_available())
        {
            // Where there is CUDA the request is valid: the ranks bind to it instead.
            FluentActions.Invoking(() => Sd35.Mesh.MeshLaunchers.InProcess(Sd35.Mesh.ComputeDevice.Cuda)).Should().NotThrow();
            return;
        }
        using var dir = new TempDirectory();
        var png = dir.File("out.png");
        var act = () => new DemoRunner(TextWriter.Null).Run(DemoOptions.Parse(["--device", "cuda", "--out", png]));
        act.Should().Throw<RequestException>().Where(e => e.Field == "device").WithMessage("*CUDA*not available*");
        File.Exists(png).Should().BeFalse();
    }

    [Fact]
    public void Device_accepts_only_cpu_or_cuda()
    {
        var act = () => DemoOptions.Parse(["--device", "tpu"]);
        act.Should().Throw<CommandLineException>().Which.Message.Should().Contain("tpu").And.Contain("cpu").And.Contain("cuda");
    }
}
