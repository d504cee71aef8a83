using Sd35.Profiling;
using Sd35.CostModeling.Systems;
using Sd35.Mesh;

namespace Sd35.CostModeling;

/// <summary>One row of the section table: seconds per image for a section (per step for <c>denoising_step</c>).</summary>
public sealed record SectionRow(string Section, double Seconds);

/// <summary>
/// Predicted seconds per image for one config on one system, section by section, with the detail it came from
/// (the slowest device's compute and communication per section, and every collective kind).
/// </summary>
public sealed record ImagePrediction(
    string Config, string System, int Steps, string Workload, ModelFactors Factors, WhatIf WhatIf,
    IReadOnlyList<SectionRow> Rows,
    IReadOnlyDictionary<string, DeviceSectionTime> Detail,
    IReadOnlyList<CollectiveSummary> Collectives)
{
    public const string Clip = PerfSections.ClipEncoding, T5 = PerfSections.T5Encoding, Encoding = PerfSections.TotalEncoding, Step = PerfSections.Step,
        Denoising = PerfSections.Denoising, Vae = PerfSections.Vae, Total = PerfSections.Total;

    public double this[string section] => Rows.First(r => r.Section == section).Seconds;

    public double StepSeconds => this[Step];
    public double TotalSeconds => this[Total];

    public static ImagePrediction From(DryRunResult run, SystemSpec system, ModelFactors factors, int steps, WhatIf? whatIf = null)
    {
        whatIf ??= new WhatIf();
        var detail = Predictor.SectionTimes(run, system, factors, whatIf);
        double Of(string s) => detail.TryGetValue(s, out var t) ? t.Seconds : 0;
        double clip = Of(PerfSections.ClipEncoding), t5 = Of(PerfSections.T5Encoding), handOff = Of(PerfSections.TotalEncoding);
        // The conditioning is made once for the recorded steps: each step carries its share.
        double step = (Of(PerfSections.Step) + Of(PerfSections.Conditioning)) / run.StepsRecorded, vae = Of(PerfSections.Vae);
        var rows = new List<SectionRow>
        {
            new(Clip, clip), new(T5, t5), new(Encoding, clip + t5 + handOff), new(Step, step), new(Denoising, step * steps), new(Vae, vae),
            new(Total, clip + t5 + handOff + step * steps + vae),
        };
        return new ImagePrediction(run.Config.Id ?? ConfigSpec.Format(run.Config), system.Name, steps, run.Workload, Predictor.Effective(system, factors), whatIf,
            rows, detail, Predictor.CollectiveTable(run, system, whatIf));
    }

    /// <summary>The section table as text: one row per section, the last starting with <c>total</c>.</summary>
    public string Table()
    {
        var lines = new List<string>
        {
            $"{Config} on {System}, {Steps} steps: {Workload}",
            $"factors: {Factors}{(WhatIf.Name == "as is" ? "" : $"; what-if: {WhatIf.Name}")}",
            $"{"section",-16} {"seconds",10}  {"compute",9} {"ccl",9} {"ring*",9}  {"TFLOP/dev",10} {"ops",6} {"ccls",5}",
        };
        foreach (var row in Rows)
        {
            // The rows that are one recorded section each (the others add sections up) show where their time goes.
            if (row.Section is Clip or T5 or Step or Vae && Detail.TryGetValue(row.Section, out var d))
                lines.Add($"{row.Section,-16} {row.Seconds,10:F4}  {d.ComputeSeconds,9:F4} {d.CollectiveSeconds,9:F4} {d.ExposedRingSeconds,9:F4}  {d.Flops / 1e12,10:F3} {d.Ops,6} {d.Collectives,5}");
            else
                lines.Add($"{row.Section,-16} {row.Seconds,10:F4}");
        }
        lines.Add("(* ring: the part of ring attention's K/V traffic not hidden behind the attention)");
        return string.Join(Environment.NewLine, lines);
    }

    public string CollectivesTable()
    {
        var lines = new List<string> { $"{"section",-15} {"group",-9} {"op",-13} {"N",2} {"axis",4} {"topology",-8} {"links",5} {"launches",8} {"MB/launch",10} {"MB/link",9} {"ms",8}" };
        foreach (var c in Collectives)
            lines.Add($"{c.Section,-15} {c.Label,-9} {c.Op + (c.Overlapped ? "*" : ""),-13} {c.GroupSize,2} {c.Axis,4} {c.Topology,-8} {c.Links,5} {c.Launches,8} " +
                      $"{c.MessageBytes / 1e6 / c.Launches,10:F3} {c.BottleneckBytes / 1e6,9:F2} {c.Seconds * 1e3,8:F2}");
        lines.Add("(* asynchronous ring-attention exchange, overlapped with the attention; MB/link: bytes over the busiest link, all launches)");
        return string.Join(Environment.NewLine, lines);
    }
}

/// <summary>A config written out in full, for configs that have no registered id: <c>2x4:cfg2@1,sp2@0,tp2@1</c>.</summary>
public static class ConfigSpec
{
    public static string Format(ParallelConfig c) =>
        $"{c.Mesh.Rows}x{c.Mesh.Cols}:cfg{c.Cfg.Factor}@{c.Cfg.Axis},sp{c.Sp.Factor}@{c.Sp.Axis},tp{c.Tp.Factor}@{c.Tp.Axis}";

    /// <summary>A registered id (<c>t3k_cfg2_sp2_tp2</c>, <c>2x4cfg1sp0tp1</c>) or the full form of <see cref="Format"/>.</summary>
    public static ParallelConfig Parse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 2) return ParallelConfig.Parse(text);
        try
        {
            var mesh = parts[0].Split('x').Select(int.Parse).ToArray();
            var factors = parts[1].Split(',').Select(p => p[(p.TakeWhile(char.IsLetter).Count())..].Split('@').Select(int.Parse).ToArray()).ToArray();
            return new ParallelConfig(new MeshShape(mesh[0], mesh[1]), (factors[0][0], factors[0][1]), (factors[1][0], factors[1][1]), (factors[2][0], factors[2][1]));
        }
        catch (Exception e) when (e is FormatException or IndexOutOfRangeException)
        {
            throw new FormatException($"'{text}' is not a config: expected a registered id or <rows>x<cols>:cfg<f>@<axis>,sp<f>@<axis>,tp<f>@<axis>", e);
        }
    }
}
