using FluentAssertions;
using Sd35.Pipeline;
using Sd35.Tests.TestSupport;
using SkiaSharp;
using static TorchSharp.torch;

namespace Sd35.Tests.Pipeline;

public class ImageOutputTests
{
    // One 2×3 image; channel c of pixel (x, y) is listed row by row.
    static readonly float[] Red = [-1f, 0f, 1f, 2f, -3f, 0.5f];
    static readonly float[] Green = [0.25f, -0.5f, 0.999f, -0.999f, 0.1f, -0.1f];
    static readonly float[] Blue = [1f, 1f, 1f, -1f, -1f, -1f];

    static Tensor Decoded() => stack([tensor(Red), tensor(Green), tensor(Blue)]).reshape(1, 3, 2, 3);

    /// <summary>diffusers' arithmetic written out per value: float32 clamp(x/2 + 0.5), ×255, round half to even.</summary>
    static byte Expected(float x) => (byte)MathF.Round(Math.Clamp(x / 2f + 0.5f, 0f, 1f) * 255f, MidpointRounding.ToEven);

    [Fact]
    public void Converts_like_diffusers_postprocess()
    {
        using var decoded = Decoded();
        var image = ImageOutput.ToRgb(decoded).Single();
        image.Width.Should().Be(3);
        image.Height.Should().Be(2);
        for (int i = 0; i < 6; i++)
            image[i % 3, i / 3].Should().Be((Expected(Red[i]), Expected(Green[i]), Expected(Blue[i])), $"pixel {i}");
        // The edges: -1 → 0, 1 → 255, 0 → 127.5 → 128 (half to even), out of range clamps.
        image[0, 0].R.Should().Be(0);
        image[1, 0].R.Should().Be(128);
        image[2, 0].R.Should().Be(255);
        image[0, 1].R.Should().Be(255);
        image[1, 1].R.Should().Be(0);
    }

    [Fact]
    public void Png_round_trips_through_SkiaSharp()
    {
        using var dir = new TempDirectory();
        var path = dir.File("out/image.png");
        using var decoded = Decoded();
        ImageOutput.SavePng(decoded, path);

        using var bitmap = SKBitmap.Decode(path);
        bitmap.Should().NotBeNull();
        bitmap.Width.Should().Be(3);
        bitmap.Height.Should().Be(2);
        for (int i = 0; i < 6; i++)
        {
            var color = bitmap.GetPixel(i % 3, i / 3);
            (color.Red, color.Green, color.Blue, color.Alpha).Should().Be((Expected(Red[i]), Expected(Green[i]), Expected(Blue[i]), (byte)255), $"pixel {i}");
        }
        Directory.GetFiles(Path.GetDirectoryName(path)!).Should().Equal([path], "only the finished PNG is left, no temporary file");
    }

    [Fact]
    public void Saving_over_an_existing_file_replaces_it_whole()
    {
        using var dir = new TempDirectory();
        var path = dir.File("image.png");
        File.WriteAllText(path, "not a png");
        using var decoded = Decoded();
        ImageOutput.SavePng(decoded, path);
        using var bitmap = SKBitmap.Decode(path);
        bitmap.Width.Should().Be(3);
        Directory.GetFiles(dir.Path).Should().HaveCount(1);
    }

    [Fact]
    public void Bfloat16_images_are_normalized_in_bfloat16_like_diffusers()
    {
        using var decoded = Decoded().to(ScalarType.BFloat16);
        using var unit = ImageOutput.ToUnitRange(decoded);
        unit.dtype.Should().Be(ScalarType.BFloat16);
        var image = ImageOutput.ToRgb(decoded).Single();
        using var expected = (unit.to(ScalarType.Float32) * 255).round().to(ScalarType.Byte).permute(0, 2, 3, 1).contiguous();
        image.Pixels.Should().Equal(expected.data<byte>().ToArray());
    }

    [Fact]
    public void Batches_and_wrong_shapes_are_refused_with_the_shape()
    {
        using var batch = zeros(2, 3, 2, 2);
        ImageOutput.ToRgb(batch).Should().HaveCount(2);
        var act = () => ImageOutput.SavePng(batch, Path.Combine(Path.GetTempPath(), "never.png"));
        act.Should().Throw<ArgumentException>().WithMessage("*[2, 3, 2, 2]*");
        using var gray = zeros(1, 1, 2, 2);
        var convert = () => ImageOutput.ToRgb(gray);
        convert.Should().Throw<ArgumentException>().WithMessage("*[1, 1, 2, 2]*");
    }
}
