using Sd35.Profiling;

namespace Sd35.Pipeline;

/// <summary>
/// The stages of one generation, in the order they run. Every report of a generation names its stages with these:
/// the observer's events (<see cref="IGenerationObserver"/>), the timings, the perf sections, progress displays, the
/// memory probe and the server's job events.
/// </summary>
public enum GenerationStage
{
    /// <summary>CLIP-L, CLIP-G and T5 on the prompt (and the negative prompt under guidance).</summary>
    TextEncoding,
    /// <summary>The VAE encoder on the input image (image to image and inpainting only).</summary>
    ImageEncoding,
    /// <summary>The transformer's steps.</summary>
    Denoising,
    /// <summary>The VAE decoder on the final latents.</summary>
    VaeDecoding,
}

/// <summary>The two spellings of each stage, kept here only: its perf section and its label for people.</summary>
public static class GenerationStages
{
    public static readonly IReadOnlyList<GenerationStage> All = Enum.GetValues<GenerationStage>();

    /// <summary>
    /// The stage's section: in perf results, targets, stats JSON and the instrumentation's stamps. Text encoding and
    /// decoding keep the reference system's names (<see cref="PerfSections"/>), so results line up with its.
    /// </summary>
    public static string Section(this GenerationStage stage) => stage switch
    {
        GenerationStage.TextEncoding => PerfSections.TotalEncoding,
        GenerationStage.ImageEncoding => PerfSections.ImageEncoding,
        GenerationStage.Denoising => PerfSections.Denoising,
        GenerationStage.VaeDecoding => PerfSections.Vae,
        _ => throw new ArgumentOutOfRangeException(nameof(stage), stage, null),
    };

    /// <summary>The stage as the demo's progress, timing tables and error messages say it ("text encoding", "vae decoding", …).</summary>
    public static string Label(this GenerationStage stage) => stage switch
    {
        GenerationStage.TextEncoding => "text encoding",
        GenerationStage.ImageEncoding => "image encoding",
        GenerationStage.Denoising => "denoising",
        GenerationStage.VaeDecoding => "vae decoding",
        _ => throw new ArgumentOutOfRangeException(nameof(stage), stage, null),
    };
}
