using FluentAssertions;
using Sd35.Demo;
using Sd35.Tests.TestSupport;
using SkiaSharp;

namespace Sd35.Tests.Demo;

public class DemoTests
{
    [Fact]
    public void Built_in_default_writes_a_png_of_the_requested_size_and_says_the_weights_are_random()
    {
        using var dir = new TempDirectory();
        var png = dir.File("out.png");
        var output = new StringWriter();
        var options = DemoOptions.Parse(["--prompt", "a red cube", "--steps", "2", "--width", "48", "--height", "32", "--seed", "7", "--out", png]);

        new DemoRunner(output, TextWriter.Null).Run(options).Should().Be(0);

        using var bitmap = SKBitmap.Decode(png);
        bitmap.Should().NotBeNull();
        (bitmap.Width, bitmap.Height).Should().Be((48, 32));
        output.ToString().Should().Contain("RANDOM").And.Contain("denoising step 2").And.Contain("vae decoding");
    }

    [Theory]
    [InlineData(new[] { "--steps", "zero" }, "--steps must be a positive integer")]
    [InlineData(new[] { "--steps", "0" }, "--steps must be a positive integer")]
    [InlineData(new[] { "--guidance", "-1" }, "--guidance must be a non-negative number")]
    [InlineData(new[] { "--colour", "red" }, "unknown option '--colour'")]
    [InlineData(new[] { "--out", "image.jpg" }, "must name a .png file")]
    [InlineData(new[] { "--prompt" }, "--prompt needs a value")]
    [InlineData(new[] { "--parallel", "t3k_cfg9" }, "t3k_cfg9")]
    [InlineData(new[] { "--model", "/nonexistent/sd35" }, "/nonexistent/sd35")]
    [InlineData(new[] { "--device", "tpu" }, "--device must be cpu or cuda")]
    public void Bad_arguments_are_named(string[] args, string expected)
    {
        var act = () => DemoOptions.Parse(args);
        act.Should().Throw<ArgumentException>().Which.Message.Should().Contain(expected);
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
        var act = () => new DemoRunner(TextWriter.Null, TextWriter.Null).Run(DemoOptions.Parse(["--model", model, "--out", png]));
        act.Should().Throw<Exception>().Which.Message.Should().Contain("scheduler");
        File.Exists(png).Should().BeFalse();
    }

    [Fact]
    public void Invalid_size_is_rejected_before_any_file_is_written()
    {
        using var dir = new TempDirectory();
        var png = dir.File("out.png");
        var act = () => new DemoRunner(TextWriter.Null, TextWriter.Null).Run(DemoOptions.Parse(["--width", "30", "--out", png]));
        act.Should().Throw<Sd35.Errors.RequestException>().WithMessage("*multiples of 8*30×64*");
        File.Exists(png).Should().BeFalse();
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
        var act = () => new DemoRunner(TextWriter.Null, TextWriter.Null).Run(DemoOptions.Parse(["--device", "cuda", "--out", png]));
        act.Should().Throw<Sd35.Errors.RequestException>().Where(e => e.Field == "device").WithMessage("*CUDA*not available*");
        File.Exists(png).Should().BeFalse();
    }
}
