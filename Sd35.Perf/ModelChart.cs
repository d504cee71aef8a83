using ScottPlot;
using Sd35.CostModeling;
using Sd35.CostModeling.Systems;
using Sd35.Mesh;

namespace Sd35.Perf;

/// <summary>Charts of the cost model: predicted time per registered config on each system it fits, with the reference's measurements marked.</summary>
public static class ModelChart
{
    /// <remarks>The red markers are the validation cases' measurements (<see cref="Validation.Cases"/>): every step, and every 28-step image.</remarks>
    public static IEnumerable<string> Write(string directory, Calibration calibration)
    {
        yield return Chart(directory, "costmodel_step.png", "Predicted seconds per denoising step (bars) and measured (red)", calibration, 20,
            p => p.StepSeconds, Measured(c => c.Section == ImagePrediction.Step));
        yield return Chart(directory, "costmodel_image.png", "Predicted seconds per image, 28 steps (bars) and measured (red)", calibration, 28,
            p => p.TotalSeconds, Measured(c => c.Section == ImagePrediction.Total && c.Steps == 28));
    }

    static (string Config, string System, double Measured, bool T5Off)[] Measured(Func<ValidationCase, bool> which) =>
        [.. Validation.Cases.Where(c => c.Measured is not null && which(c)).Select(c => (c.ConfigId, c.System, c.Measured!.Value, c.Workload.T5 is null))];

    static string Chart(string directory, string file, string title, Calibration calibration, int steps, Func<ImagePrediction, double> value,
        (string Config, string System, double Measured, bool T5Off)[] measured)
    {
        var plot = new Plot();
        var labels = new List<string>();
        double x = 0;
        foreach (var system in new[] { "t3k", "galaxy", "blackhole_quietbox", "h200x8", "h200" })
        {
            var spec = SystemSpec.Get(system);
            foreach (var named in NamedParallelConfigs.All.Where(n => CostModel.Fits(n.Config, spec)))
            {
                bool t5Off = measured.Any(m => m.Config == named.Id && m.System == system && m.T5Off);
                var workload = t5Off ? Workload.Sd35Large.WithoutT5() : Workload.Sd35Large;
                var prediction = CostModel.Predict(named.Config, spec, steps, workload, factors: calibration.Factors);
                var bar = plot.Add.Bar(x, value(prediction));
                bar.LegendText = "";
                labels.Add($"{named.Id}\n{system}{(t5Off ? " (T5 off)" : "")}");
                foreach (var m in measured.Where(m => m.Config == named.Id && m.System == system))
                {
                    var marker = plot.Add.Marker(x, m.Measured, MarkerShape.FilledCircle, 10, Colors.Red);
                    marker.LegendText = "";
                }
                x++;
            }
        }
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, labels.Count).Select(i => (double)i).ToArray(), labels.ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = 60;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.Bottom.MinimumSize = 160;
        plot.Axes.Margins(bottom: 0);
        plot.Title(title);
        plot.YLabel("seconds");
        string path = Path.Combine(directory, file);
        plot.SavePng(path, 1400, 700);
        return path;
    }
}
