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

    /// <summary>The documented bounds of the numeric fields (the demo's help and the server's schema show them).</summary>
    public const int MaxSteps = 1000;             // the scheduler's training timesteps: more steps repeat timesteps
    public const double MaxGuidanceScale = 100;   // SD3.5 is used at 3.5–7; far beyond, velocities overflow to NaN/inf
    public const int MaxMaxSequenceLength = 512;  // T5's position buckets and diffusers' cap

    /// <param name="sizeMultiple">the VAE scale factor × patch size (16 for SD3.5)</param>
    /// <param name="transformerLayers">the transformer's block count, which skip-layer guidance's layers must lie within</param>
    /// <param name="maxPixels">the largest width and height the transformer's position table covers (pos_embed_max_size × patch × VAE factor, see <see cref="Preflight.MaxImageSize"/>)</param>
    /// <exception cref="RequestException">naming the field at fault</exception>
    public void Validate(int sizeMultiple, int? transformerLayers = null, int? maxPixels = null)
    {
        CheckSize("width", Width, sizeMultiple, maxPixels);
        CheckSize("height", Height, sizeMultiple, maxPixels);
        if (Steps <= 0 || Steps > MaxSteps) throw new RequestException("steps", $"must be in 1..{MaxSteps}; got {Steps}");
        if (!double.IsFinite(GuidanceScale) || GuidanceScale < 0 || GuidanceScale > MaxGuidanceScale)
            throw new RequestException("guidance", $"must be a number in 0..{MaxGuidanceScale}; got {GuidanceScale}");
        if (MaxSequenceLength <= 0 || MaxSequenceLength > MaxMaxSequenceLength)
            throw new RequestException("max_sequence_length", $"must be in 1..{MaxMaxSequenceLength}; got {MaxSequenceLength}");
        if (SkipLayerGuidance is { } slg && (slg.Layers.Length == 0 || slg.Start < 0 || slg.Stop > 1 || slg.Start >= slg.Stop || !double.IsFinite(slg.Scale)))
            throw new RequestException("skip_layer_guidance", $"needs layers, a finite scale and 0 ≤ start < stop ≤ 1; got start {slg.Start}, stop {slg.Stop}, scale {slg.Scale}");
        if (SkipLayerGuidance is { } skip && transformerLayers is int layers && skip.Layers.FirstOrDefault(l => l < 0 || l >= layers, -1) is var bad and not -1)
            throw new RequestException("skip_layer_guidance", $"layer {bad} is outside the transformer's blocks 0..{layers - 1}");
    }

    static void CheckSize(string field, int value, int multiple, int? maxPixels)
    {
        if (value <= 0 || value % multiple != 0)
            throw new RequestException(field, $"must be a positive multiple of {multiple} pixels; got {value}");
        if (maxPixels is int max && value > max)
            throw new RequestException(field, $"{value} pixels is beyond the model's position-embedding grid; at most {max} pixels");
    }
}
