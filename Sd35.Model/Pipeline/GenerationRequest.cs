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

/// <summary>
/// One request — text to image, image to image (<see cref="Image"/>) or inpainting (<see cref="Image"/> and
/// <see cref="Mask"/>) — checked before any work is done.
/// </summary>
public sealed record GenerationRequest
{
    public required string Prompt { get; init; }
    public string NegativePrompt { get; init; } = "";
    /// <summary>CLIP-G's prompt; null or "" means <see cref="Prompt"/> (diffusers' <c>prompt_2 or prompt</c>).</summary>
    public string? Prompt2 { get; init; }
    /// <summary>T5's prompt; null or "" means <see cref="Prompt"/>.</summary>
    public string? Prompt3 { get; init; }
    /// <summary>CLIP-G's negative prompt; null or "" means <see cref="NegativePrompt"/>.</summary>
    public string? NegativePrompt2 { get; init; }
    /// <summary>T5's negative prompt; null or "" means <see cref="NegativePrompt"/>.</summary>
    public string? NegativePrompt3 { get; init; }
    /// <summary>diffusers' <c>num_images_per_prompt</c>: a batch of this many images from the one prompt.</summary>
    public int NumImagesPerPrompt { get; init; } = 1;
    /// <summary>Run without T5 even when the model has it: zeros in its place, as diffusers with <c>text_encoder_3=None</c>.</summary>
    public bool NoT5 { get; init; }
    /// <summary>The image to start from (3 channels, <see cref="Width"/> × <see cref="Height"/>): image-to-image, or inpainting with a <see cref="Mask"/>.</summary>
    public InputImage? Image { get; init; }
    /// <summary>The inpainting mask (1 channel, the image's size): ≥ 0.5 is repainted, below is kept.</summary>
    public InputImage? Mask { get; init; }
    /// <summary>How much of the schedule image-to-image and inpainting run, in (0, 1]; null: diffusers' default <see cref="DefaultStrength"/>.</summary>
    public double? Strength { get; init; }
    public int Steps { get; init; } = 28;
    public double GuidanceScale { get; init; } = 3.5;
    public long Seed { get; init; }
    public int Width { get; init; } = 1024;
    public int Height { get; init; } = 1024;
    public int MaxSequenceLength { get; init; } = 256;
    public SkipLayerGuidance? SkipLayerGuidance { get; init; }

    /// <summary>diffusers' default strength of <c>StableDiffusion3Img2ImgPipeline</c> and <c>StableDiffusion3InpaintPipeline</c>.</summary>
    public const double DefaultStrength = 0.6;

    public double StrengthOrDefault => Strength ?? DefaultStrength;

    /// <summary>The denoising steps that run: all of them for text to image, the last strength·steps of them otherwise.</summary>
    public int StepsRun => Image is null ? Steps : Steps - FlowMatchEulerScheduler.StepsSkipped(Steps, StrengthOrDefault);

    /// <summary>diffusers' rule: classifier-free guidance runs only when the scale is above 1.</summary>
    public bool UsesClassifierFreeGuidance => GuidanceScale > 1;

    /// <summary>The documented bounds of the numeric fields (the demo's help and the server's schema show them).</summary>
    public const int MaxSteps = 1000;             // the scheduler's training timesteps: more steps repeat timesteps
    public const double MaxGuidanceScale = 100;   // SD3.5 is used at 3.5–7; far beyond, velocities overflow to NaN/inf
    public const int MaxMaxSequenceLength = 512;  // T5's position buckets and diffusers' cap
    public const int MaxImagesPerPrompt = 64;      // a hard cap on one batch; front-ends set their own lower limits

    /// <param name="sizeMultiple">the VAE scale factor × patch size (16 for SD3.5)</param>
    /// <param name="transformerLayers">the transformer's block count, which skip-layer guidance's layers must lie within</param>
    /// <param name="maxPixels">the largest width and height the transformer's position table covers (pos_embed_max_size × patch × VAE factor, see <see cref="Preflight.MaxImageSize"/>)</param>
    /// <exception cref="RequestException">naming the field at fault</exception>
    public void Validate(int sizeMultiple, int? transformerLayers = null, int? maxPixels = null)
    {
        ValidateImages(sizeMultiple, maxPixels);
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

    /// <summary>
    /// The fields of image to image, inpainting and the text options, with the field at fault named: the image's own
    /// size first (the front-ends take width and height from it), then the mask against it, strength, the batch and T5.
    /// </summary>
    void ValidateImages(int sizeMultiple, int? maxPixels)
    {
        if (NumImagesPerPrompt < 1 || NumImagesPerPrompt > MaxImagesPerPrompt)
            throw new RequestException("n", $"images per prompt must be in 1..{MaxImagesPerPrompt}; got {NumImagesPerPrompt}");
        if (NoT5) RefuseT5Prompts("the request runs without T5 (no_t5)");
        if (Mask is not null && Image is null) throw new RequestException("mask", "inpainting needs an image to repaint; give the image too");
        if (Strength is { } s && Image is null) throw new RequestException("strength", "applies to image-to-image and inpainting; give an image");
        if (Image is not { } image) return;
        // diffusers' SD3 image-to-image and inpainting pipelines (v0.32.2) have no skip-layer guidance: refused rather
        // than run as an extension no reference checks.
        if (SkipLayerGuidance is not null)
            throw new RequestException("skip_layer_guidance", "applies to text to image only (diffusers' image-to-image and inpainting have none); leave it out with an image");
        if (image.Channels != 3) throw new RequestException("image", $"must have 3 channels (RGB); got {image.Channels}");
        CheckImageSize("image", image.Width, image.Height, sizeMultiple, maxPixels);
        if (image.Width != Width || image.Height != Height)
            throw new RequestException("image", $"is {image.Width}×{image.Height} pixels but the request asks for {Width}×{Height}; leave width and height out to use the image's size");
        if (Mask is { } mask)
        {
            if (mask.Channels != 1) throw new RequestException("mask", $"must have 1 channel; got {mask.Channels}");
            if (mask.Width != image.Width || mask.Height != image.Height)
                throw new RequestException("mask", $"is {mask.Width}×{mask.Height} pixels but the image is {image.Width}×{image.Height}; they must be the same size");
        }
        double strength = StrengthOrDefault;
        if (!double.IsFinite(strength) || strength <= 0 || strength > 1)
            throw new RequestException("strength", $"must be in (0, 1]; got {strength}");
        if (StepsRun < 1)
            throw new RequestException("strength", $"{strength} of {Steps} steps runs no step; raise strength or steps");
    }

    /// <summary>
    /// Without T5 (the request's <see cref="NoT5"/>, or a model with no text_encoder_3) T5's prompts cannot take effect:
    /// diffusers ignores them, this project refuses them, naming the field and <paramref name="why"/>.
    /// </summary>
    public void RefuseT5Prompts(string why)
    {
        if (!string.IsNullOrEmpty(Prompt3)) throw new RequestException("prompt_3", $"is T5's prompt, but {why}");
        if (!string.IsNullOrEmpty(NegativePrompt3)) throw new RequestException("negative_prompt_3", $"is T5's negative prompt, but {why}");
    }

    /// <summary>An input image's side must be a size the model makes: the error names the nearest valid sizes, never resizes.</summary>
    static void CheckImageSize(string field, int width, int height, int multiple, int? maxPixels)
    {
        static string Nearest(int value, int multiple, int? max)
        {
            int below = value / multiple * multiple, above = below + multiple;
            var sizes = new[] { below, above }.Where(v => v > 0 && (max is null || v <= max)).Distinct();
            return string.Join(" or ", sizes);
        }
        foreach (var (side, value) in new[] { ("width", width), ("height", height) })
        {
            if (maxPixels is int max && value > max)
                throw new RequestException(field, $"{side} {value} pixels is beyond the model's position-embedding grid; at most {max} pixels");
            if (value % multiple != 0)
                throw new RequestException(field, $"is {width}×{height} pixels; the {side} must be a multiple of {multiple}: nearest valid {side}s {Nearest(value, multiple, maxPixels)} (the image is not resized)");
        }
    }

    static void CheckSize(string field, int value, int multiple, int? maxPixels)
    {
        if (value <= 0 || value % multiple != 0)
            throw new RequestException(field, $"must be a positive multiple of {multiple} pixels; got {value}");
        if (maxPixels is int max && value > max)
            throw new RequestException(field, $"{value} pixels is beyond the model's position-embedding grid; at most {max} pixels");
    }
}
