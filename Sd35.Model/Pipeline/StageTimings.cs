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
    public IReadOnlyList<double> StepSeconds => _steps;
    public double DecodingSeconds { get; set; }
    public double DenoisingSeconds => _steps.Sum();
    public double TotalSeconds => LoadSeconds + EncodingSeconds + DenoisingSeconds + DecodingSeconds;

    public void AddStep(double seconds) => _steps.Add(seconds);

    /// <summary>A plain-text table of the stages, for the demo and perf reports.</summary>
    public string ToTable()
    {
        var lines = new List<string> { $"{"stage",-22} {"seconds",9}" };
        void Row(string name, double s) => lines.Add($"{name,-22} {s,9:F3}");
        Row("load", LoadSeconds);
        Row("text encoding", EncodingSeconds);
        for (int i = 0; i < _steps.Count; i++) Row($"denoising step {i + 1}", _steps[i]);
        Row("denoising (all)", DenoisingSeconds);
        Row("vae decoding", DecodingSeconds);
        Row("total", TotalSeconds);
        return string.Join(Environment.NewLine, lines);
    }
}
