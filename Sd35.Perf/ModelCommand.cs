using System.Text.Json;
using Sd35.CostModeling;
using Sd35.CostModeling.Systems;

namespace Sd35.Perf;

/// <summary>
/// <c>model</c>: the mesh cost model on the command line.
/// <list type="bullet">
/// <item><c>model --config &lt;id&gt; --system &lt;name&gt; [--steps N] [--no-t5] [--out file.json] [--collectives]</c>: the section table of one config;</item>
/// <item><c>model validate [--out dir]</c>: the calibration and the validation table, and the charts;</item>
/// <item><c>model search --system &lt;name&gt; [--steps N] [--target S]</c>: every valid config ranked, with what-ifs for the best;</item>
/// <item><c>model systems</c>: the built-in systems.</item>
/// </list>
/// </summary>
public static class ModelCommand
{
    const string Usage = """
        usage: model --config <id> --system <name> [--steps N] [--no-t5] [--out file.json] [--collectives]
               model validate [--out dir]
               model search --system <name> [--steps N] [--target seconds] [--no-t5]
               model systems
        <id>: a registered config (t3k_cfg2_sp2_tp2, 2x4cfg1sp0tp1, ...) or <rows>x<cols>:cfg<f>@<axis>,sp<f>@<axis>,tp<f>@<axis>
        """;

    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public static int Run(string[] args)
    {
        try
        {
            return args switch
            {
                ["systems", ..] => Systems(),
                ["validate", .. var rest] => Validate(Options(rest)),
                ["search", .. var rest] => Search(Options(rest)),
                _ => One(Options(args)),
            };
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidDataException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
    }

    static Dictionary<string, string> Options(string[] args)
    {
        var options = new Dictionary<string, string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"unexpected argument '{args[i]}'");
            string key = args[i][2..];
            bool flag = key is "no-t5" or "collectives";
            if (!flag && i + 1 >= args.Length) throw new ArgumentException($"--{key} needs a value");
            options[key] = flag ? "true" : args[++i];
        }
        return options;
    }

    static int Steps(Dictionary<string, string> o, int fallback) =>
        o.TryGetValue("steps", out var s) ? int.TryParse(s, out int n) && n > 0 ? n : throw new ArgumentException($"--steps must be a positive integer, got '{s}'") : fallback;

    static Workload WorkloadOf(Dictionary<string, string> o) => o.ContainsKey("no-t5") ? Workload.Sd35Large.WithoutT5() : Workload.Sd35Large;

    static int Systems()
    {
        foreach (var name in SystemSpec.Names)
        {
            var s = SystemSpec.BuiltIn[name];
            Console.WriteLine($"{name,-20} {s.MeshRows}x{s.MeshCols}  {s.MatmulTflops.Value,5} TF  {s.DramGBps.Value,5} GB/s  {s.Description}");
        }
        return 0;
    }

    static int One(Dictionary<string, string> o)
    {
        if (!o.TryGetValue("config", out var config) || !o.TryGetValue("system", out var system))
            throw new ArgumentException("--config and --system are required");
        var calibration = CostModel.Calibration;
        var prediction = CostModel.Predict(config, system, Steps(o, 20), WorkloadOf(o));
        Console.WriteLine(prediction.Table());
        if (o.ContainsKey("collectives")) Console.WriteLine(prediction.CollectivesTable());
        Console.WriteLine($"calibration: {calibration}");
        string path = o.GetValueOrDefault("out") ?? Path.Combine("TestResults", "costmodel", $"{prediction.Config.Replace(':', '_').Replace(',', '_').Replace('@', 'a')}_{prediction.System}_{prediction.Steps}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, JsonSerializer.Serialize(new { prediction, calibration }, JsonOptions));
        Console.WriteLine($"wrote {path}");
        return 0;
    }

    static int Validate(Dictionary<string, string> o)
    {
        string dir = o.GetValueOrDefault("out") ?? Path.Combine("TestResults", "costmodel");
        Directory.CreateDirectory(dir);
        var calibration = CostModel.Calibration;
        Console.WriteLine($"calibration: {calibration}");
        var rows = Validation.Compute(calibration, CostModel.Run);
        Console.WriteLine(Validation.Table(rows));
        var alternative = Calibration.FitOverhead(CostModel.Run);
        Console.WriteLine();
        Console.WriteLine($"alternative calibration (not used for the table above): {alternative}");
        Console.WriteLine(Validation.Table(Validation.Compute(alternative, CostModel.Run)));
        File.WriteAllText(Path.Combine(dir, "validation.json"), JsonSerializer.Serialize(new
        {
            calibration,
            rows = rows.Select(r => new { r.Case.What, r.Case.ConfigId, r.Case.System, r.Case.Section, r.Case.Steps, r.Predicted, r.Case.Measured, r.Error, r.Case.Source }),
        }, JsonOptions));
        foreach (var file in ModelChart.Write(dir, calibration)) Console.WriteLine($"wrote {file}");
        return 0;
    }

    static int Search(Dictionary<string, string> o)
    {
        if (!o.TryGetValue("system", out var name)) throw new ArgumentException("--system is required");
        var system = SystemSpec.Get(name);
        int steps = Steps(o, 28);
        var workload = WorkloadOf(o);
        var factors = CostModel.Calibration.Factors;
        var ranked = ConfigSearch.Rank(system, workload, steps, factors, message => Console.Error.WriteLine(message));
        Console.WriteLine($"{system.Name}: every valid config, {steps} steps, {workload.Describe()}; {Predictor.Effective(system, factors)}");
        Console.WriteLine(ConfigSearch.Table(ranked));
        var best = ranked[0];
        Console.WriteLine();
        Console.WriteLine($"best: {best.Name}");
        Console.WriteLine(best.Prediction.Table());
        Console.WriteLine(best.Prediction.CollectivesTable());
        double? target = o.TryGetValue("target", out var t) ? double.Parse(t, System.Globalization.CultureInfo.InvariantCulture) : null;
        Console.WriteLine();
        Console.WriteLine($"what would have to change{(target is { } x ? $" to reach {x} s" : "")}:");
        foreach (var (whatIf, prediction) in ConfigSearch.WhatIfs(best.Config, system, workload, steps, factors))
            Console.WriteLine($"  {whatIf.Name,-42} {prediction.TotalSeconds,7:F2} s{(target is { } y ? (prediction.TotalSeconds <= y ? "  reaches the target" : "  misses") : "")}");
        return 0;
    }
}
