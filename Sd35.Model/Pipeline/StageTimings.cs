namespace Sd35.Pipeline;

/// <summary>Wall-clock seconds of each stage of one generation: encoding, every denoising step, decoding.</summary>
public sealed class StageTimings
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

    /// <summary>A plain-text table of the stages, for the demo and perf reports.</summary>
    public string ToTable() =>
        string.Join(Environment.NewLine, Rows().Select(r => $"{r.Stage,-22} {r.Seconds,9:F3}").Prepend($"{"stage",-22} {"seconds",9}"));

    /// <summary>The table's rows in order: load, text encoding, each denoising step, denoising (all), vae decoding, total.</summary>
    public IEnumerable<(string Stage, double Seconds)> Rows()
    {
        yield return ("load", LoadSeconds);
        yield return ("text encoding", EncodingSeconds);
        if (ImageEncodingSeconds > 0) yield return ("image encoding", ImageEncodingSeconds);
        for (int i = 0; i < _steps.Count; i++) yield return ($"denoising step {i + 1}", _steps[i]);
        yield return ("denoising (all)", DenoisingSeconds);
        yield return ("vae decoding", DecodingSeconds);
        yield return ("total", TotalSeconds);
    }
}
