namespace Sd35.Profiling;

/// <summary>
/// The timed sections of one generation, named exactly as the reference system's perf test names them
/// (tt-metal <c>test_performance_sd35.py</c>, see shared/docs/reference-system.md §3), so results line up. The
/// stages' own sections are spelled through <see cref="Sd35.Pipeline.GenerationStages.Section"/>; the rest are parts of a
/// stage (clip, t5, each step) or span the whole generation (load, total).
/// </summary>
public static class PerfSections
{
    public const string ClipEncoding = "clip_encoding";
    public const string T5Encoding = "t5_encoding";
    public const string TotalEncoding = "total_encoding";
    public const string Denoising = "denoising";
    public const string Vae = "vae";
    /// <summary>The VAE encoder on an input image (image to image, inpainting); the reference times text to image only.</summary>
    public const string ImageEncoding = "image_encoding";
    public const string Total = "total";
    /// <summary>Reported, never inside <see cref="Total"/>: the reference loads before it times.</summary>
    public const string Load = "load";

    const string StepPrefix = "denoising_step_";

    /// <summary>The section of denoising step <paramref name="j"/> (from 0) in results: <c>denoising_step_{j}</c>.</summary>
    public static string DenoisingStep(int j) => $"{StepPrefix}{j}";

    /// <summary>The recording section of every denoising step (the cost model's and the trace's; timings are per step, <see cref="DenoisingStep"/>).</summary>
    public const string Step = "denoising_step";

    /// <summary>The latent-independent part of every denoising step, made once before the first for the whole schedule.</summary>
    public const string Conditioning = "denoising_conditioning";

    /// <summary>The sections that carry targets (per-step sections are reported, and covered by <see cref="Denoising"/>).</summary>
    public static readonly string[] Targeted = [ClipEncoding, T5Encoding, TotalEncoding, Denoising, Vae, Total];

    public static bool IsStep(string section) => section.StartsWith(StepPrefix, StringComparison.Ordinal);

    /// <summary>The step index of a <see cref="DenoisingStep"/> section.</summary>
    public static int StepIndex(string section) => IsStep(section)
        ? int.Parse(section[StepPrefix.Length..], System.Globalization.CultureInfo.InvariantCulture)
        : throw new ArgumentException($"'{section}' is not a denoising step's section", nameof(section));
}
