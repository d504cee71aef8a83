using System.Runtime.InteropServices;
using Sd35.Errors;
using SkiaSharp;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// A picture given to the pipeline — the image of image-to-image and inpainting (3 channels) or the inpainting mask
/// (1 channel; 1 = repaint, 0 = keep) — as diffusers' image processor holds it before normalizing: float32 values in
/// [0, 1], channel-major (C × H × W). Plain data, so a request carrying it is serialized like any other (the MPI relay).
/// </summary>
public sealed record InputImage(int Channels, int Height, int Width, float[] Values)
{
    /// <summary>[1, C, H, W] float32 on the CPU.</summary>
    public Tensor ToTensor()
    {
        if (Values.Length != (long)Channels * Height * Width)
            throw new ArgumentException($"a {Channels}×{Height}×{Width} image needs {(long)Channels * Height * Width} values, has {Values.Length}");
        return tensor(Values, [1, Channels, Height, Width]);
    }

    /// <summary>From a [1, C, H, W] (or [C, H, W]) tensor of values in [0, 1].</summary>
    public static InputImage FromTensor(Tensor image)
    {
        using var plain = image.dim() == 4 ? image.squeeze(0) : image.alias();
        if (plain.dim() != 3) throw new ArgumentException($"expected an image [1, C, H, W], got [{string.Join(", ", image.shape)}]");
        using var values = plain.to(ScalarType.Float32).cpu().contiguous();
        return new InputImage((int)plain.shape[0], (int)plain.shape[1], (int)plain.shape[2], values.data<float>().ToArray());
    }

    /// <summary>
    /// Decodes a PNG or JPEG file's bytes (SkiaSharp) to RGB, or with <paramref name="grayscale"/> to one channel the way
    /// PIL's <c>convert("L")</c> weighs R, G and B (diffusers' mask processor converts masks so). Values are
    /// <c>byte / 255</c> in float32, as diffusers' <c>pil_to_numpy</c>. Alpha is dropped.
    /// </summary>
    /// <param name="what">names the input in errors: the option (<c>--image</c> 'in.png') or the request field</param>
    /// <param name="maxSide">the largest width or height taken, checked from the file's header before any pixel is decoded</param>
    /// <param name="maxSideSource">says where <paramref name="maxSide"/> comes from in the error (an option, the model)</param>
    /// <exception cref="RequestException">naming <paramref name="field"/>: not a PNG or JPEG, too large, or truncated</exception>
    public static InputImage Decode(byte[] bytes, string field, string what, int maxSide, string maxSideSource, bool grayscale = false)
    {
        var rgba = DecodeRgba(bytes, field, what, maxSide, maxSideSource);
        return grayscale ? Gray(rgba.Width, rgba.Height, rgba.Pixels) : Rgb(rgba.Width, rgba.Height, rgba.Pixels);
    }

    /// <summary>8-bit RGBA pixels, row-major, alpha not premultiplied (a half-transparent pixel keeps its colour).</summary>
    public sealed record Rgba(int Width, int Height, byte[] Pixels);

    /// <summary>
    /// The one decoder of input pictures (the demo's options, the native API's fields, the OpenAI edit form's files):
    /// a PNG or JPEG as unpremultiplied RGBA. The size is read from the header first: a few compressed bytes can declare
    /// 30000×30000 pixels, which must be refused before gigabytes (or more than an array holds) are allocated for them.
    /// </summary>
    /// <inheritdoc cref="Decode" path="/param"/>
    /// <exception cref="RequestException">naming <paramref name="field"/>: not a PNG or JPEG, too large, or truncated</exception>
    public static Rgba DecodeRgba(byte[] bytes, string field, string what, int maxSide, string maxSideSource)
    {
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data)
            ?? throw new RequestException(field, $"{what} is not a readable PNG or JPEG image");
        if (codec.EncodedFormat is not (SKEncodedImageFormat.Png or SKEncodedImageFormat.Jpeg))
            throw new RequestException(field, $"{what} is a {codec.EncodedFormat} image; only PNG and JPEG are read");
        var (width, height) = (codec.Info.Width, codec.Info.Height);
        if (width > maxSide || height > maxSide)
            throw new RequestException(field, $"{what} is {width}×{height} pixels; images of at most {maxSide} pixels a side are taken ({maxSideSource})");
        // Skia decodes what is there and may call a cut file complete (a PNG cut inside its image data decodes as
        // "success" with the rest left blank); a complete file ends with its format's end marker.
        if (!HasEndMarker(bytes, codec.EncodedFormat))
            throw new RequestException(field, $"{what} is truncated (the {codec.EncodedFormat} file has no end marker)");
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        if (info.BytesSize64 > Array.MaxLength)
            throw new RequestException(field, $"{what} is {width}×{height} pixels, too large to decode");
        var rgba = new byte[info.BytesSize64];
        var handle = GCHandle.Alloc(rgba, GCHandleType.Pinned);
        SKCodecResult result;
        try { result = codec.GetPixels(info, handle.AddrOfPinnedObject()); }
        finally { handle.Free(); }
        if (result == SKCodecResult.IncompleteInput)
            throw new RequestException(field, $"{what} is truncated (the {codec.EncodedFormat} data ends before the image does)");
        if (result != SKCodecResult.Success)
            throw new RequestException(field, $"{what} could not be decoded ({result})");
        return new Rgba(width, height, rgba);
    }

    /// <summary>PNG: the IEND chunk; JPEG: the EOI marker FF D9 (trailing bytes after either are tolerated).</summary>
    static bool HasEndMarker(byte[] bytes, SKEncodedImageFormat format)
    {
        if (format == SKEncodedImageFormat.Png) return bytes.AsSpan().LastIndexOf("IEND"u8) >= 0;
        var tail = bytes.AsSpan(Math.Max(0, bytes.Length - 4096));
        return tail.LastIndexOf([(byte)0xFF, (byte)0xD9]) >= 0;
    }

    static InputImage Rgb(int width, int height, byte[] rgba) => Interleaved(width, height, rgba, stride: 4);

    /// <summary>An 8-bit RGB image (3 bytes per pixel) as the pipeline's input, <c>byte / 255</c> as diffusers' <c>pil_to_numpy</c>.</summary>
    public static InputImage FromRgb(RgbImage image) => Interleaved(image.Width, image.Height, image.Pixels, stride: 3);

    static InputImage Interleaved(int width, int height, byte[] bytes, int stride)
    {
        int pixels = width * height;
        var values = new float[3 * pixels];
        for (int p = 0; p < pixels; p++)
            for (int c = 0; c < 3; c++)
                values[c * pixels + p] = bytes[stride * p + c] / 255f;
        return new InputImage(3, height, width, values);
    }

    static InputImage Gray(int width, int height, byte[] rgba)
    {
        int pixels = width * height;
        var values = new float[pixels];
        for (int p = 0; p < pixels; p++)
        {
            // PIL's ITU-R 601-2 luma in 16-bit fixed point, rounded: L = (19595 R + 38470 G + 7471 B + 2^15) >> 16.
            int luma = (19595 * rgba[4 * p] + 38470 * rgba[4 * p + 1] + 7471 * rgba[4 * p + 2] + 0x8000) >> 16;
            values[p] = luma / 255f;
        }
        return new InputImage(1, height, width, values);
    }

    /// <summary>
    /// The repaint region of a mask as diffusers' mask processor binarizes it (value ≥ 0.5): its pixel count and
    /// bounding box (x, y, width, height), or an empty box when nothing is to be repainted.
    /// </summary>
    public (long Area, int X, int Y, int Width, int Height) RepaintRegion()
    {
        long area = 0;
        int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1;
        for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width; x++)
            {
                if (Values[y * Width + x] < 0.5f) continue;
                area++;
                (minX, minY, maxX, maxY) = (Math.Min(minX, x), Math.Min(minY, y), Math.Max(maxX, x), Math.Max(maxY, y));
            }
        return area == 0 ? (0, 0, 0, 0, 0) : (area, minX, minY, maxX - minX + 1, maxY - minY + 1);
    }
}
