using System.Globalization;
using System.Text.RegularExpressions;
using Sd35.Errors;

namespace Sd35.Server.Api.OpenAi;

/// <summary>
/// The body of <c>POST /v1/images/generations</c> (and the text fields of <c>/v1/images/edits</c>): OpenAI's fields
/// (<c>prompt</c>, <c>n</c>, <c>size</c> as "WxH", <c>response_format</c>, <c>model</c>, <c>user</c>) plus this
/// model's options as extra fields, spelt as in the native API (<c>negative_prompt</c>, <c>steps</c>, …).
/// </summary>
public sealed partial record OpenAiImageRequest
{
    /// <summary>OpenAI's limit on images per request.</summary>
    public const int MaxImages = 10;

    public string? Prompt { get; init; }
    public int? N { get; init; }
    public string? Size { get; init; }
    public string? ResponseFormat { get; init; }
    public string? Model { get; init; }
    /// <summary>OpenAI's end-user id for abuse monitoring: accepted, not used.</summary>
    public string? User { get; init; }
    public string? NegativePrompt { get; init; }
    public int? Steps { get; init; }
    public double? Guidance { get; init; }
    public long? Seed { get; init; }
    public SkipLayerGuidanceBody? SkipLayerGuidance { get; init; }

    public static IReadOnlySet<string> FieldNames { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "prompt", "n", "size", "response_format", "model", "user",
        "negative_prompt", "steps", "guidance", "seed", "skip_layer_guidance",
    };

    /// <summary>OpenAI's default for <c>response_format</c> (DALL·E answers URLs unless asked for base64).</summary>
    public bool WantsBase64 => ResponseFormat switch
    {
        null or "url" => false,
        "b64_json" => true,
        var other => throw new RequestException("response_format", $"must be 'url' or 'b64_json', got '{other}'"),
    };

    public int Count => N switch
    {
        null => 1,
        >= 1 and <= MaxImages => N.Value,
        var other => throw new RequestException("n", $"must be in 1..{MaxImages} (images per request), got {other}"),
    };

    /// <summary>Width and height from <c>size</c>; null for absent or "auto" (the model's default size).</summary>
    public (int Width, int Height)? Dimensions()
    {
        if (Size is null or "auto") return null;
        var match = SizePattern().Match(Size);
        if (!match.Success) throw new RequestException("size", $"must be 'WIDTHxHEIGHT' (e.g. 1024x1024) or 'auto', got '{Size}'");
        return (int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    /// <summary>The native API's body for the same image: the server's defaults and checks apply unchanged.</summary>
    public ImageRequestBody ToNative((int Width, int Height)? size) => new()
    {
        Prompt = Prompt,
        NegativePrompt = NegativePrompt,
        Steps = Steps,
        Guidance = Guidance,
        Seed = Seed,
        Width = size?.Width,
        Height = size?.Height,
        SkipLayerGuidance = SkipLayerGuidance,
    };

    [GeneratedRegex(@"^([0-9]{1,5})x([0-9]{1,5})$")]
    private static partial Regex SizePattern();
}
