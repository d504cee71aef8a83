using System.Text.Json.Serialization;

namespace Sd35.Server.Api;

/// <summary>
/// The JSON body of <c>POST /v1/images</c> and <c>POST /v1/generate</c> (snake_case on the wire). Every field but
/// <c>prompt</c> may be left out: the server fills in its defaults, and the job reports the values it ran with.
/// </summary>
public sealed record ImageRequestBody
{
    public string? Prompt { get; init; }
    public string? NegativePrompt { get; init; }
    public int? Steps { get; init; }
    public double? Guidance { get; init; }
    public long? Seed { get; init; }
    public int? Width { get; init; }
    public int? Height { get; init; }
    /// <summary>Skip-layer guidance; null or absent: off. SD3.5 Large uses layers 7, 8, 9 (see <c>GET /v1/info</c>).</summary>
    public SkipLayerGuidanceBody? SkipLayerGuidance { get; init; }
    /// <summary>Images per prompt (diffusers' <c>num_images_per_prompt</c>), 1 up to the server's <c>--max-images</c>.</summary>
    public int? N { get; init; }
    /// <summary>CLIP-G's prompt; absent: <c>prompt</c>.</summary>
    [JsonPropertyName("prompt_2")] public string? Prompt2 { get; init; }
    /// <summary>T5's prompt; absent: <c>prompt</c>.</summary>
    [JsonPropertyName("prompt_3")] public string? Prompt3 { get; init; }
    [JsonPropertyName("negative_prompt_2")] public string? NegativePrompt2 { get; init; }
    [JsonPropertyName("negative_prompt_3")] public string? NegativePrompt3 { get; init; }
    /// <summary>Run without T5 (zeros in its place).</summary>
    [JsonPropertyName("no_t5")] public bool? NoT5 { get; init; }
    /// <summary>Image to image and inpainting: how much of the schedule runs, in (0, 1] (default 0.6).</summary>
    public double? Strength { get; init; }
    /// <summary>A PNG or JPEG, base64 (a <c>data:</c> URL prefix is allowed): image to image, or inpainting with <see cref="Mask"/>. Width and height default to its size.</summary>
    public string? Image { get; init; }
    /// <summary>The inpainting mask, base64 PNG or JPEG of the image's size: white (≥ 50 % grey) is repainted.</summary>
    public string? Mask { get; init; }

    /// <summary>The wire names, for rejecting unknown fields (a misspelt <c>guidence</c> must not be silently ignored).</summary>
    public static IReadOnlySet<string> FieldNames { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "prompt", "negative_prompt", "steps", "guidance", "seed", "width", "height", "skip_layer_guidance",
        "n", "prompt_2", "prompt_3", "negative_prompt_2", "negative_prompt_3", "no_t5", "strength", "image", "mask",
    };

    /// <summary>The text fields: a multipart form's value for them is taken as text, any other field's as JSON (a number, true).</summary>
    public static IReadOnlySet<string> TextFieldNames { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "prompt", "negative_prompt", "prompt_2", "prompt_3", "negative_prompt_2", "negative_prompt_3", "image", "mask",
    };
}

/// <summary>Layers skipped in the extra conditional pass, its scale, and the part of the schedule it applies to.</summary>
public sealed record SkipLayerGuidanceBody
{
    public int[]? Layers { get; init; }
    public double? Scale { get; init; }
    public double? Start { get; init; }
    public double? Stop { get; init; }
}

/// <summary>A 4xx answer: the message, and the request field at fault when there is one.</summary>
public sealed record ErrorBody(string Error, string? Field = null);
