using System.Runtime.InteropServices;
using SkiaSharp;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// The last step of the pipeline, as diffusers' <c>VaeImageProcessor.postprocess(output_type="pil")</c> does it:
/// decoded [B, 3, H, W] in about [-1, 1] → <c>(x / 2 + 0.5).clamp(0, 1)</c> in the decoder's dtype → float32 →
/// <c>(x · 255).round()</c> (round half to even, as numpy) → bytes; then PNG files.
/// </summary>
public static class ImageOutput
{
    /// <summary>diffusers' <c>denormalize</c>: [-1, 1] → [0, 1], clamped, in the input's dtype.</summary>
    public static Tensor ToUnitRange(Tensor decoded)
    {
        using var scope = NewDisposeScope();
        return (decoded / 2 + 0.5).clamp(0, 1).MoveToOuterDisposeScope();
    }

    /// <summary>Converts each decoded image of the batch (about [-1, 1]) to 8-bit RGB.</summary>
    public static IReadOnlyList<RgbImage> ToRgb(Tensor decoded)
    {
        using var unit = ToUnitRange(decoded);
        return FromUnitRange(unit);
    }

    /// <summary>Converts images already in [0, 1] ([B, 3, H, W], what the pipeline returns) to 8-bit RGB.</summary>
    public static IReadOnlyList<RgbImage> FromUnitRange(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != 3)
            throw new ArgumentException($"expected images [B, 3, H, W], got [{string.Join(", ", images.shape)}]");
        using var scope = NewDisposeScope();
        var bytes = (images.to(ScalarType.Float32) * 255).round().to(ScalarType.Byte)
            .permute(0, 2, 3, 1).contiguous().cpu();                          // [B, H, W, 3]
        int batch = (int)images.shape[0], height = (int)images.shape[2], width = (int)images.shape[3];
        return Enumerable.Range(0, batch).Select(b => new RgbImage(width, height, bytes[b].data<byte>().ToArray())).ToList();
    }

    /// <summary>Saves one decoded image ([1, 3, H, W]) as a PNG file.</summary>
    public static void SavePng(Tensor decoded, string path)
    {
        if (decoded.dim() != 4 || decoded.shape[0] != 1)
            throw new ArgumentException($"expected one image [1, 3, H, W], got [{string.Join(", ", decoded.shape)}]; save a batch image by image");
        SavePng(ToRgb(decoded)[0], path);
    }

    /// <summary>
    /// Writes a PNG next to <paramref name="path"/> under a temporary name and then renames it into place, so a
    /// crash or a full disk never leaves a truncated image under the final name.
    /// </summary>
    public static void SavePng(RgbImage image, string path)
    {
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                Encode(image, stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }

    static void Encode(RgbImage image, Stream stream)
    {
        if (image.Pixels.Length != image.Width * image.Height * 3)
            throw new ArgumentException($"{image.Width}×{image.Height} RGB image needs {image.Width * image.Height * 3} bytes, has {image.Pixels.Length}");
        // Skia has no packed 24-bit format: expand to RGBA with opaque alpha, which its PNG encoder writes as RGB.
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var rgba = new byte[image.Width * image.Height * 4];
        for (int p = 0, q = 0; p < image.Pixels.Length; p += 3, q += 4)
        {
            rgba[q] = image.Pixels[p];
            rgba[q + 1] = image.Pixels[p + 1];
            rgba[q + 2] = image.Pixels[p + 2];
            rgba[q + 3] = 255;
        }
        Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException($"SkiaSharp could not encode a {image.Width}×{image.Height} PNG.");
        data.SaveTo(stream);
    }
}
