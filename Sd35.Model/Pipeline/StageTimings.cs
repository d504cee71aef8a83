using Sd35.Profiling;

namespace Sd35.Pipeline;

/// <summary>
/// Wall-clock seconds of each stage of one generation (<see cref="GenerationStage"/>), without loading, which is
/// counted apart: text encoding (with its CLIP and T5 sections), image encoding, every denoising step (told to it
/// as an observer of the steps), decoding.
/// </summary>
public sealed class StageTimings : IGenerationObserver
{
    readonly List<double> _steps = [];

    public double LoadSeconds { get; set; }
    public double EncodingSeconds { get; set; }
    /// <summary>Both CLIPs over every prompt encoded (positive and negative), inside <see cref="EncodingSeconds"/>.</summary>
    public double ClipEncodingSeconds { get; set; }
    /// <summary>T5 over every prompt encoded, inside <see cref="EncodingSeconds"/>.</summary>
    public double T5EncodingSeconds { get; set; }
    /// <summary>The VAE encoder on the input image (image to image and inpainting; 0 for text to image).</summary>
    public double ImageEncodingSeconds { get; set; }
    public IReadOnlyList<double> StepSeconds => _steps;
    public double DecodingSeconds { get; set; }
    public double DenoisingSeconds => _steps.Sum();
    public double TotalSeconds => LoadSeconds + EncodingSeconds + ImageEncodingSeconds + DenoisingSeconds + DecodingSeconds;

    public void AddStep(double seconds) => _steps.Add(seconds);

    void IGenerationObserver.StepEnded(DenoisingStepEnd step) => AddStep(step.Seconds);

    /// <summary>Sets the computing seconds of a stage that runs once (not denoising, whose steps add up).</summary>
    public void Record(GenerationStage stage, double seconds)
    {
        switch (stage)
        {
            case GenerationStage.TextEncoding: EncodingSeconds = seconds; break;
            case GenerationStage.ImageEncoding: ImageEncodingSeconds = seconds; break;
            case GenerationStage.VaeDecoding: DecodingSeconds = seconds; break;
            default: throw new ArgumentOutOfRangeException(nameof(stage), stage, "denoising is timed by its steps");
        }
    }

    /// <summary>The computing seconds of <paramref name="stage"/> (its loading is in <see cref="LoadSeconds"/>).</summary>
    public double Seconds(GenerationStage stage) => stage switch
    {
        GenerationStage.TextEncoding => EncodingSeconds,
        GenerationStage.ImageEncoding => ImageEncodingSeconds,
        GenerationStage.Denoising => DenoisingSeconds,
        GenerationStage.VaeDecoding => DecodingSeconds,
        _ => throw new ArgumentOutOfRangeException(nameof(stage), stage, null),
    };

    /// <summary>
    /// The generation's perf sections (<see cref="PerfSections"/>): clip, t5 and total encoding, each step, denoising,
    /// vae, the image's encoding when there was one, load, and total — <paramref name="wallSeconds"/> of the whole
    /// generation less the loading, which the reference does before it times.
    /// </summary>
    public Dictionary<string, double> Sections(double wallSeconds)
    {
        var sections = new Dictionary<string, double>
        {
            [PerfSections.ClipEncoding] = ClipEncodingSeconds,
            [PerfSections.T5Encoding] = T5EncodingSeconds,
            [GenerationStage.TextEncoding.Section()] = EncodingSeconds,
        };
        if (ImageEncodingSeconds > 0) sections[GenerationStage.ImageEncoding.Section()] = ImageEncodingSeconds;
        for (int j = 0; j < _steps.Count; j++) sections[PerfSections.DenoisingStep(j)] = _steps[j];
        sections[GenerationStage.Denoising.Section()] = DenoisingSeconds;
        sections[GenerationStage.VaeDecoding.Section()] = DecodingSeconds;
        sections[PerfSections.Total] = wallSeconds - LoadSeconds;
        sections[PerfSections.Load] = LoadSeconds;
        return sections;
    }

    /// <summary>A plain-text table of the stages, for the demo and perf reports.</summary>
    public string ToTable() =>
        string.Join(Environment.NewLine, Rows().Select(r => $"{r.Stage,-22} {r.Seconds,9:F3}").Prepend($"{"stage",-22} {"seconds",9}"));

    /// <summary>The table's rows in order: load, text encoding, (image encoding,) each denoising step, denoising (all), vae decoding, total.</summary>
    public IEnumerable<(string Stage, double Seconds)> Rows()
    {
        yield return ("load", LoadSeconds);
        yield return (GenerationStage.TextEncoding.Label(), EncodingSeconds);
        if (ImageEncodingSeconds > 0) yield return (GenerationStage.ImageEncoding.Label(), ImageEncodingSeconds);
        for (int i = 0; i < _steps.Count; i++) yield return ($"{GenerationStage.Denoising.Label()} step {i + 1}", _steps[i]);
        yield return ($"{GenerationStage.Denoising.Label()} (all)", DenoisingSeconds);
        yield return (GenerationStage.VaeDecoding.Label(), DecodingSeconds);
        yield return ("total", TotalSeconds);
    }
}
