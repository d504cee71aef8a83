using Sd35.CostModeling.Systems;
using Sd35.Mesh;

namespace Sd35.CostModeling;

/// <summary>A measurement of the reference system the model is checked against (or, with no measurement, a prediction to keep for later).</summary>
/// <param name="UpperBoundOnly">the figure is a target the reference's runs pass, not a measurement: only "at most" is known</param>
public sealed record ValidationCase(string What, string ConfigId, string System, Workload Workload, int Steps, string Section,
    double? Measured, string Source, double Divisor = 1, bool UpperBoundOnly = false)
{
    /// <summary>The calibration point itself: it reproduces by construction and is not evidence.</summary>
    public bool IsCalibration => ConfigId == Calibration.ConfigId && System == Calibration.System && Section == ImagePrediction.Step
                                 && Workload == Calibration.MeasuredWorkload;
}

public sealed record ValidationRow(ValidationCase Case, double Predicted)
{
    public double? Error => Case.Measured is { } m ? (Predicted - m) / m : null;
}

/// <summary>
/// The validation table: predictions made with the factors fitted on the calibration point only, next to every
/// other measurement of the reference system, with the error whatever it is.
/// </summary>
public static class Validation
{
    const string Ref = "reference-system.md";

    public static IReadOnlyList<ValidationCase> Cases { get; } = Build();

    static ValidationCase[] Build()
    {
        var t5Off = Calibration.MeasuredWorkload;
        var large = Workload.Sd35Large;
        var cfg1Large = large;
        return
        [
            new("8-chip box step (calibration)", Calibration.ConfigId, "t3k", t5Off, 20, ImagePrediction.Step, Calibration.MeasuredStep, $"{Ref} §3.4 (PR #26503)"),
            new("8-chip box CLIP, one prompt", Calibration.ConfigId, "t3k", t5Off, 20, ImagePrediction.Clip, 0.0897,
                $"{Ref} §3.4 (PR #26503); the reference's clip_encoding holds the last (negative) pass only (§3.1), so the prediction is halved", Divisor: 2),
            new("8-chip box encoding, both prompts", Calibration.ConfigId, "t3k", t5Off, 20, ImagePrediction.Encoding, 0.184, $"{Ref} §3.4 (PR #26503), T5 off"),
            new("8-chip box VAE", Calibration.ConfigId, "t3k", t5Off, 20, ImagePrediction.Vae, 1.74,
                $"{Ref} §3.4 (PR #26503); measured wall time includes host gather, upload, download and PIL conversion"),
            new("8-chip box total, 20 steps", Calibration.ConfigId, "t3k", t5Off, 20, ImagePrediction.Total, 11.68, $"{Ref} §3.4 (PR #26503)"),
            new("8-chip box total, 28-step demo", Calibration.ConfigId, "t3k", t5Off, 28, ImagePrediction.Total, 12.2, $"{Ref} §3.4 (StableDiffusion35.md, 'current')"),
            new("Galaxy step", "tg_cfg2_sp4_tp4", "galaxy", large, 20, ImagePrediction.Step, 0.1905, $"{Ref} §3.4 (issue #46083 baseline)"),
            new("Galaxy total, 28-step demo", "tg_cfg2_sp4_tp4", "galaxy", large, 28, ImagePrediction.Total, 5.6, $"{Ref} §3.4 (StableDiffusion35.md, 'current')"),
            new("Galaxy total, 20 steps (CI target)", "tg_cfg2_sp4_tp4", "galaxy", large, 20, ImagePrediction.Total, 5.9,
                $"{Ref} §3.3 CI target (an upper bound the runs pass, not a measurement)", UpperBoundOnly: true),
            new("Blackhole 4-chip step, cfg1 sp1 tp4", "qb_cfg1_sp1_tp4", "blackhole_quietbox", cfg1Large, 20, ImagePrediction.Step, 0.30,
                "systems.md §5.1 table ('≈0.30 s' measured step; no primary source cited there)"),
            new("Blackhole 4-chip, 20 steps", "qb_cfg1_sp1_tp4", "blackhole_quietbox", cfg1Large, 20, ImagePrediction.Total, null, "no measurement found"),
            new("one H200, 28 steps", "n150_cfg1_sp1_tp1", "h200", large, 28, ImagePrediction.Total, null, "prediction for later GPU measurement"),
        ];
    }

    public static IReadOnlyList<ValidationRow> Compute(Calibration calibration, Func<ParallelConfig, Workload, DryRunResult> run) =>
        Cases.Select(c =>
        {
            var prediction = ImagePrediction.From(run(ConfigSpec.Parse(c.ConfigId), c.Workload), SystemSpec.Get(c.System), calibration.Factors, c.Steps);
            return new ValidationRow(c, prediction[c.Section] / c.Divisor);
        }).ToArray();

    public static string Table(IReadOnlyList<ValidationRow> rows)
    {
        var lines = new List<string> { $"| what | config | system | predicted s | measured s | error |", "| --- | --- | --- | ---: | ---: | ---: |" };
        foreach (var r in rows)
            lines.Add($"| {r.Case.What} | {r.Case.ConfigId} | {r.Case.System} | {r.Predicted:F3} | {(r.Case.Measured is { } m ? m.ToString("0.###") : "—")} | " +
                      $"{(r.Error is { } e ? (r.Case.IsCalibration ? "(fitted)" : $"{e:+0.0%;-0.0%}") : "—")} |");
        return string.Join(Environment.NewLine, lines);
    }
}
