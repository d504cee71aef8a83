using Sd35.Errors;

namespace Sd35.Pipeline;

/// <summary>SD3.5's skip-layer guidance: the layers skipped and the part of the schedule where it applies.</summary>
public sealed record SkipLayerGuidance(int[] Layers, double Scale = 2.8, double Start = 0.01, double Stop = 0.2)
{
    /// <summary>The values diffusers documents for SD3.5: layers 7, 8, 9 from 1 % to 20 % of the steps, scale 2.8.</summary>
    public static SkipLayerGuidance Sd35 { get; } = new([7, 8, 9]);

    /// <summary>diffusers applies it where start·n &lt; i &lt; stop·n (strict on both sides).</summary>
    public bool AppliesAt(int step, int steps) => step > steps * Start && step < steps * Stop;
}

/// <summary>One text-to-image request, checked before any work is done.</summary>
public sealed record GenerationRequest
{
    public required string Prompt { get; init; }
    public string NegativePrompt { get; init; } = "";
    public string? Prompt2 { get; init; }
    public string? Prompt3 { get; init; }
    public int Steps { get; init; } = 28;
    public double GuidanceScale { get; init; } = 3.5;
    public long Seed { get; init; }
    public int Width { get; init; } = 1024;
    public int Height { get; init; } = 1024;
    public int MaxSequenceLength { get; init; } = 256;
    public SkipLayerGuidance? SkipLayerGuidance { get; init; }

    /// <summary>diffusers' rule: classifier-free guidance runs only when the scale is above 1.</summary>
    public bool UsesClassifierFreeGuidance => GuidanceScale > 1;

    /// <summary>
    /// Checks every field before any work; a bad one raises <see cref="RequestException"/> naming it as the JSON field
    /// (<c>width</c>, <c>steps</c>, <c>guidance</c>, …), which the demo shows as its option and the server as a 400 body.
    /// </summary>
    /// <param name="sizeMultiple">the VAE scale factor × patch size (16 for SD3.5)</param>
    /// <param name="transformerLayers">the transformer's block count, which skip-layer guidance's layers must lie within</param>
    /// <param name="maxPixels">the largest width and height the transformer's position table covers (pos_embed_max_size × patch × VAE factor)</param>
    public void Validate(int sizeMultiple, int? transformerLayers = null, int? maxPixels = null)
    {
        void Size(string field, int value)
        {
            if (value <= 0 || value % sizeMultiple != 0)
                throw new RequestException(field, $"width and height must be positive multiples of {sizeMultiple}; got {Width}×{Height}");
        }
        Size("width", Width);
        Size("height", Height);
        if (maxPixels is int max && (Width > max || Height > max))
            throw new RequestException(Width > max ? "width" : "height",
                $"{(Width > max ? Width : Height)} pixels is beyond the model's position-embedding grid; at most {max} pixels");
        if (Steps <= 0) throw new RequestException("steps", $"steps must be positive; got {Steps}");
        if (!double.IsFinite(GuidanceScale) || GuidanceScale < 0) throw new RequestException("guidance", $"guidance scale must be a finite non-negative number; got {GuidanceScale}");
        if (MaxSequenceLength <= 0 || MaxSequenceLength > 512) throw new RequestException("max_sequence_length", $"max_sequence_length must be in 1..512; got {MaxSequenceLength}");
        if (SkipLayerGuidance is { } slg && (slg.Layers.Length == 0 || slg.Start < 0 || slg.Stop > 1 || slg.Start >= slg.Stop))
            throw new RequestException("skip_layer_guidance", $"skip-layer guidance needs layers and 0 ≤ start < stop ≤ 1; got start {slg.Start}, stop {slg.Stop}");
        if (SkipLayerGuidance is { } skip && transformerLayers is int layers && skip.Layers.FirstOrDefault(l => l < 0 || l >= layers, -1) is var bad and not -1)
            throw new RequestException("skip_layer_guidance", $"layer {bad} is outside the transformer's blocks 0..{layers - 1}");
    }
}
