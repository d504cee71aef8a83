using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.Features;
using Sd35.Errors;
using Sd35.Pipeline;
using Sd35.Server.Hosting;

namespace Sd35.Server.Api.OpenAi;

/// <summary>
/// The multipart body of <c>POST /v1/images/edits</c>, read within <see cref="AccessOptions.MaxUploadBytes"/> and
/// checked field by field (a 400 names the field): <c>image</c> (a PNG or JPEG), optional
/// <c>mask</c> of the same size, <c>strength</c> in (0, 1], and the text fields of <see cref="OpenAiImageRequest"/>.
/// <para>The mask follows OpenAI: its fully transparent pixels (alpha 0) are repainted, every other pixel is kept.
/// Without a mask, an image with fully transparent pixels is its own mask (as OpenAI does); an opaque image without a
/// mask is image-to-image.</para>
/// </summary>
public sealed record OpenAiEditForm(OpenAiImageRequest Body, RgbImage Image, float[]? Mask, double Strength)
{
    /// <summary>diffusers' default strength for SD3 image-to-image and inpainting.</summary>
    public const double DefaultStrength = 0.6;

    static readonly HashSet<string> FileFields = ["image", "image[]", "mask"];
    static readonly HashSet<string> TextFields = [.. OpenAiImageRequest.FieldNames, "strength"];

    /// <param name="maxImageSide">the server's <c>--max-image-side</c>: a larger image or mask is refused from its header, before it is decoded</param>
    public static async Task<OpenAiEditForm> ReadAsync(HttpRequest request, int maxBytes, int maxImageSide, JsonSerializerOptions json, CancellationToken cancellationToken)
    {
        if (!request.HasFormContentType || !(request.ContentType ?? "").StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase))
            throw new RequestReader.BodyException(StatusCodes.Status415UnsupportedMediaType, new ErrorBody("the body must be multipart/form-data (image, prompt, …)"));
        if (request.ContentLength > maxBytes) throw TooLarge(maxBytes);
        // Kestrel's server-wide cap is small (JSON bodies); this route alone takes images, up to its own limit.
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } cap) cap.MaxRequestBodySize = maxBytes;

        var form = await RequestReader.ReadFormAsync(request, maxBytes, TooLarge, cancellationToken);

        foreach (var name in form.Keys.Concat(form.Files.Select(f => f.Name)))
            if (!TextFields.Contains(name) && !FileFields.Contains(name))
                throw new RequestException(name, $"unknown field '{name}'; the fields are image, mask, {string.Join(", ", TextFields)}");

        var body = TextBody(form, json);
        var imageFile = form.Files.GetFile("image") ?? form.Files.GetFile("image[]")
            ?? throw new RequestException("image", "is required: the image to edit, as a file part (PNG)");
        if (form.Files.GetFiles("image").Count + form.Files.GetFiles("image[]").Count > 1)
            throw new RequestException("image", "this server edits one image per request");
        var image = Decode(imageFile, "image", maxImageSide);
        float[]? mask;
        if (form.Files.GetFile("mask") is { } maskFile)
        {
            var maskBitmap = Decode(maskFile, "mask", maxImageSide);
            if (maskBitmap.Width != image.Width || maskBitmap.Height != image.Height)
                throw new RequestException("mask", $"is {maskBitmap.Width}x{maskBitmap.Height} but the image is {image.Width}x{image.Height}; they must be the same size");
            mask = RepaintMask(maskBitmap)
                ?? throw new RequestException("mask", "has no fully transparent pixel: OpenAI's masks mark the pixels to repaint with alpha 0");
        }
        else
        {
            mask = RepaintMask(image);
        }

        double strength = Number(form, "strength", double.Parse) ?? DefaultStrength;
        if (!(strength > 0 && strength <= 1)) throw new RequestException("strength", $"must be in (0, 1], got {strength.ToString(CultureInfo.InvariantCulture)}");
        return new OpenAiEditForm(body, Rgb(image), mask, strength);
    }

    static string? Text(IFormCollection form, string field) =>
        form.TryGetValue(field, out var values) ? (values.Count == 1 ? values[0] : throw new RequestException(field, "is given more than once")) : null;

    static T? Number<T>(IFormCollection form, string field, Func<string, IFormatProvider, T> parse) where T : struct
    {
        if (Text(form, field) is not { } text) return null;
        try
        {
            return parse(text, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new RequestException(field, $"must be a {typeof(T).Name.ToLowerInvariant()} number, got '{text}'");
        }
    }

    /// <summary>
    /// The text fields as the JSON body of <c>/v1/images/generations</c> would give them, read the same way: a
    /// string field as the text, any other (numbers, <c>skip_layer_guidance</c>'s object) as the JSON value written.
    /// </summary>
    static OpenAiImageRequest TextBody(IFormCollection form, JsonSerializerOptions json)
    {
        var body = new JsonObject();
        foreach (var field in OpenAiImageRequest.FieldNames)
        {
            if (Text(form, field) is not { } text) continue;
            body[field] = IsText(field, json) ? JsonValue.Create(text) : ParseValue(field, text);
        }
        return RequestReader.Deserialize<OpenAiImageRequest>(JsonSerializer.SerializeToUtf8Bytes(body), json);
    }

    static bool IsText(string field, JsonSerializerOptions json)
    {
        var property = json.GetTypeInfo(typeof(OpenAiImageRequest)).Properties.FirstOrDefault(p => p.Name == field)
            ?? json.GetTypeInfo(typeof(ImageRequestBody)).Properties.First(p => p.Name == field);
        return property.PropertyType == typeof(string);
    }

    static JsonNode? ParseValue(string field, string text)
    {
        try
        {
            return JsonNode.Parse(text);
        }
        catch (JsonException)
        {
            throw new RequestException(field, $"must be a number (or, for an object field, JSON), got '{text}'");
        }
    }

    /// <summary>The file as unpremultiplied RGBA, by the pipeline's one picture decoder (size checked from the header).</summary>
    static InputImage.Rgba Decode(IFormFile file, string field, int maxSide)
    {
        using var stream = new MemoryStream((int)file.Length);
        file.CopyTo(stream);
        return InputImage.DecodeRgba(stream.ToArray(), field, $"'{file.FileName}'", maxSide, ImageEdits.MaxSideSource);
    }

    /// <summary>1 where alpha is 0 (repaint), 0 elsewhere; null when no pixel is fully transparent.</summary>
    static float[]? RepaintMask(InputImage.Rgba rgba)
    {
        var pixels = rgba.Pixels;
        var mask = new float[rgba.Width * rgba.Height];
        bool any = false;
        for (int i = 0; i < mask.Length; i++)
            if (pixels[4 * i + 3] == 0) { mask[i] = 1; any = true; }
        return any ? mask : null;
    }

    static RgbImage Rgb(InputImage.Rgba rgba)
    {
        var pixels = rgba.Pixels;
        var rgb = new byte[rgba.Width * rgba.Height * 3];
        for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
            (rgb[i], rgb[i + 1], rgb[i + 2]) = (pixels[j], pixels[j + 1], pixels[j + 2]);
        return new RgbImage(rgba.Width, rgba.Height, rgb);
    }

    static RequestReader.BodyException TooLarge(int maxBytes) =>
        new(StatusCodes.Status413PayloadTooLarge, new ErrorBody($"the multipart body is larger than this server's upload limit of {maxBytes} bytes (--max-upload-bytes)"));
}
