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

    /// <summary>The wire names, for rejecting unknown fields (a misspelt <c>guidence</c> must not be silently ignored).</summary>
    public static IReadOnlySet<string> FieldNames { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "prompt", "negative_prompt", "steps", "guidance", "seed", "width", "height", "skip_layer_guidance",
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
