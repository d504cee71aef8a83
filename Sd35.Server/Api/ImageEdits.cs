using Sd35.Errors;
using Sd35.Pipeline;

namespace Sd35.Server.Api;

/// <summary>
/// The one place where a request's input picture and mask — PNG or JPEG bytes, from a JSON field in base64 or from a
/// multipart upload — turn a text-to-image request into the pipeline's image to image (an image) or inpainting (an
/// image and a mask, white repainted) with its strength. Width and height default to the image's size; a size the
/// caller gave must equal it. Any endpoint that edits images (this API's, an OpenAI-compatible one) calls
/// <see cref="Apply"/>; every failure is a <see cref="RequestException"/> naming the field.
/// </summary>
public static class ImageEdits
{
    /// <param name="width">the width the caller asked for, if any (else the image's)</param>
    /// <param name="height">the height the caller asked for, if any (else the image's)</param>
    /// <param name="maxSide">the server's <c>--max-image-side</c> (or the model's limit if smaller): a larger picture is refused from its header</param>
    public static GenerationRequest Apply(GenerationRequest request, byte[]? image, byte[]? mask, double? strength, int? width, int? height, int maxSide,
        string imageField = "image", string maskField = "mask")
    {
        if (mask is not null && image is null) throw new RequestException(maskField, "inpainting needs an image to repaint; send the image too");
        if (image is null) return request with { Strength = strength };
        var picture = InputImage.Decode(image, imageField, "the image", maxSide, MaxSideSource);
        var maskPicture = mask is null ? null : InputImage.Decode(mask, maskField, "the mask", maxSide, MaxSideSource, grayscale: true);
        return request with
        {
            Image = picture,
            Mask = maskPicture,
            Strength = strength,
            Width = width ?? picture.Width,
            Height = height ?? picture.Height,
        };
    }

    /// <summary>Where a server's picture size limit comes from, for the error that refuses a larger picture.</summary>
    public const string MaxSideSource = "this server's --max-image-side";

    /// <summary>A JSON field's base64 (optionally a <c>data:image/png;base64,</c> URL, as a browser's canvas gives it).</summary>
    public static byte[]? FromBase64(string? text, string field)
    {
        if (text is null) return null;
        int comma = text.StartsWith("data:", StringComparison.Ordinal) ? text.IndexOf(',') : -1;
        try { return Convert.FromBase64String(comma < 0 ? text : text[(comma + 1)..]); }
        catch (FormatException) { throw new RequestException(field, "is not valid base64 (send a PNG or JPEG file's bytes in base64)"); }
    }
}
