using FluentAssertions;
using Sd35.Demo;
using Sd35.Tests.TestSupport;
using SkiaSharp;
using Xunit.Abstractions;

namespace Sd35.Tests.Demo;

/// <summary>
/// The demo's image to image, inpainting, images per prompt and text options, in process (<see cref="DemoApp.Run"/>,
/// which owns the exit codes): PNG and JPEG inputs, the output at the input's size, the numbered files of a batch, and
/// every bad input as exit 2 with one line naming the option, before any work (nothing is written).
/// </summary>
public class DemoImageModeTests(ITestOutputHelper log)
{
    /// <summary>A smooth colour picture (PNG or JPEG by the name's extension).</summary>
    internal static string WritePicture(TempDirectory dir, string name, int width, int height)
    {
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, new SKColor((byte)(255 * x / width), (byte)(255 * y / height), 128));
        return Save(dir, name, bitmap);
    }

    /// <summary>A black mask with a white (repaint) rectangle.</summary>
    internal static string WriteMask(TempDirectory dir, string name, int width, int height, SKRectI repaint)
    {
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, repaint.Contains(x, y) ? SKColors.White : SKColors.Black);
        return Save(dir, name, bitmap);
    }

    static string Save(TempDirectory dir, string name, SKBitmap bitmap)
    {
        var format = name.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase) ? SKEncodedImageFormat.Jpeg : SKEncodedImageFormat.Png;
        using var data = bitmap.Encode(format, 95);
        var path = dir.File(name);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    (int ExitCode, string Output, string Error) Run(params string[] args)
    {
        var (output, error) = (new StringWriter(), new StringWriter());
        int code = DemoApp.Run(args, output, error);
        log.WriteLine($"exit {code}\n{output}\n{error}");
        return (code, output.ToString(), error.ToString());
    }

    static (int Width, int Height) SizeOf(string png)
    {
        using var bitmap = SKBitmap.Decode(png);
        return (bitmap.Width, bitmap.Height);
    }

    [Fact]
    public void Image_to_image_from_a_jpeg_writes_a_png_of_the_inputs_size()
    {
        using var dir = new TempDirectory();
        var input = WritePicture(dir, "in.jpg", 48, 32);
        var png = dir.File("out.png");
        var (code, output, error) = Run("--image", input, "--strength", "0.5", "--steps", "4", "--out", png);
        code.Should().Be(0, error);
        SizeOf(png).Should().Be((48, 32));
        output.Should().Contain("image to image at strength 0.5").And.Contain("denoising step 2/2").And.Contain("image encoding");
    }

    [Fact]
    public void Inpainting_with_two_images_writes_numbered_files()
    {
        using var dir = new TempDirectory();
        var input = WritePicture(dir, "in.png", 32, 32);
        var mask = WriteMask(dir, "mask.png", 32, 32, new SKRectI(8, 8, 24, 24));
        var (code, output, error) = Run("--image", input, "--mask", mask, "--images", "2", "--steps", "2", "--strength", "1",
            "--prompt-2", "clip g text", "--negative-prompt-3", "t5 negative", "--out", dir.File("out.png"));
        code.Should().Be(0, error);
        output.Should().Contain("inpainting at strength 1").And.Contain("2 images");
        SizeOf(dir.File("out-1.png")).Should().Be((32, 32));
        SizeOf(dir.File("out-2.png")).Should().Be((32, 32));
        File.Exists(dir.File("out.png")).Should().BeFalse("a batch is written as numbered files");
    }

    [Fact]
    public void No_t5_runs_without_t5()
    {
        using var dir = new TempDirectory();
        var (code, output, error) = Run("--no-t5", "--steps", "1", "--width", "32", "--height", "32", "--out", dir.File("out.png"));
        code.Should().Be(0, error);
        output.Should().Contain("no T5");
    }

    [Theory]
    [InlineData("strength_high", "--strength '1.5': must be in (0, 1]")]
    [InlineData("strength_zero", "--strength '0': must be in (0, 1]")]
    [InlineData("strength_without_image", "--strength: applies to image-to-image and inpainting")]
    [InlineData("images_zero", "--images '0': must be in 1..64")]
    [InlineData("images_too_many", "--images '65': must be in 1..64")]
    [InlineData("truncated", "--image: '|cut.png' is truncated")]
    [InlineData("not_an_image", "--image: '|notes.png' is not a readable PNG or JPEG image")]
    [InlineData("missing_file", "--image: '|absent.png' cannot be read")]
    [InlineData("mask_of_another_size", "--mask: is 32×48 pixels but the image is 48×32")]
    [InlineData("image_too_large", "--image: '|in208x32.png' is 208×32 pixels; images of at most 192 pixels a side")]
    // A few hundred bytes whose header declares 30000×30000 (its RGBA size overflows an int): refused from the header.
    [InlineData("image_declaring_a_huge_size", "--image: '|huge.png' is 30000×30000 pixels; images of at most 192 pixels a side")]
    [InlineData("mask_declaring_a_huge_size", "--mask: '|huge.png' is 30000×30000 pixels; images of at most 192 pixels a side")]
    // The tiny model's multiple is 8 (VAE factor 4 × patch 2); SD3.5's is 16.
    [InlineData("image_not_multiple_of_16", "--image: is 50×32 pixels; the width must be a multiple of 8: nearest valid widths 48 or 56")]
    [InlineData("mask_without_image", "--mask: inpainting needs an image")]
    [InlineData("no_t5_with_prompt_3", "--prompt-3: is T5's prompt, but the request runs without T5")]
    [InlineData("size_differs_from_image", "--image: is 48×32 pixels but the request asks for 64×32")]
    public void Bad_input_exits_2_with_one_line_naming_the_option(string situation, string expected)
    {
        using var dir = new TempDirectory();
        string Picture(int w, int h) => WritePicture(dir, $"in{w}x{h}.png", w, h);
        string[] args = situation switch
        {
            "strength_high" => ["--image", Picture(48, 32), "--strength", "1.5"],
            "strength_zero" => ["--image", Picture(48, 32), "--strength", "0"],
            "strength_without_image" => ["--strength", "0.5"],
            "images_zero" => ["--images", "0"],
            "images_too_many" => ["--images", "65"],
            "truncated" => ["--image", Truncated(dir, Picture(48, 32))],
            "not_an_image" => ["--image", Text(dir, "notes.png")],
            "missing_file" => ["--image", dir.File("absent.png")],
            "mask_of_another_size" => ["--image", Picture(48, 32), "--mask", WriteMask(dir, "m.png", 32, 48, new SKRectI(0, 0, 8, 8))],
            "image_too_large" => ["--image", Picture(208, 32)],
            "image_declaring_a_huge_size" => ["--image", Huge(dir)],
            "mask_declaring_a_huge_size" => ["--image", Picture(48, 32), "--mask", Huge(dir)],
            "image_not_multiple_of_16" => ["--image", Picture(50, 32)],
            "mask_without_image" => ["--mask", WriteMask(dir, "m.png", 32, 32, new SKRectI(0, 0, 8, 8))],
            "no_t5_with_prompt_3" => ["--no-t5", "--prompt-3", "a t5 prompt"],
            "size_differs_from_image" => ["--image", Picture(48, 32), "--width", "64"],
            _ => throw new ArgumentOutOfRangeException(nameof(situation)),
        };
        var before = Directory.EnumerateFiles(dir.Path).ToList();
        var (code, _, error) = Run([.. args, "--steps", "2", "--out", dir.File("out.png")]);
        code.Should().Be(2, error);
        var lines = error.TrimEnd().Split('\n');
        lines.Should().HaveCount(1, error);
        lines[0].Should().StartWith("error: ");
        // A path in the message is the one given; '|' separates the parts around it.
        foreach (var part in expected.Split('|')) lines[0].Should().Contain(part);
        Directory.EnumerateFiles(dir.Path).Should().BeEquivalentTo(before, "bad input writes nothing");
    }

    static string Truncated(TempDirectory dir, string name)
    {
        var bytes = File.ReadAllBytes(name);
        File.WriteAllBytes(dir.File("cut.png"), bytes[..(bytes.Length / 2)]);
        return dir.File("cut.png");
    }

    static string Huge(TempDirectory dir)
    {
        File.WriteAllBytes(dir.File("huge.png"), HugePng.Declaring(30000, 30000));
        return dir.File("huge.png");
    }

    static string Text(TempDirectory dir, string name)
    {
        File.WriteAllText(dir.File(name), "not a picture");
        return dir.File(name);
    }
}
