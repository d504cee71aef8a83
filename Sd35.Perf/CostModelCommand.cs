using System.CommandLine;
using System.Text.Json;
using Sd35.CostModeling;
using Sd35.CostModeling.Systems;

namespace Sd35.Perf;

/// <summary>
/// <c>cost-model</c>: the mesh cost model (<see cref="CostModel"/>) on the command line.
/// <list type="bullet">
/// <item><c>cost-model prediction --config &lt;id&gt; --system &lt;name&gt; [--steps N] [--no-t5] [--out file.json] [--collectives]</c>: the section table of one config;</item>
/// <item><c>cost-model validation [--out dir]</c>: the calibration and the validation table, and the charts;</item>
/// <item><c>cost-model ranking --system &lt;name&gt; [--steps N] [--target S] [--no-t5]</c>: every valid config ranked, with what-ifs for the best;</item>
/// <item><c>cost-model systems</c>: the built-in systems.</item>
/// </list>
/// </summary>
public static class CostModelCommand
{
    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public static Command Command() => new("cost-model", "The mesh cost model: predicted seconds per section of an SD3.5 Large image on a system's mesh.")
    {
        PredictionCommand(), ValidationCommand(), RankingCommand(), SystemsCommand(),
    };

    static Option<string> SystemOption() => new("--system")
    {
        Description = $"A built-in system ({string.Join(", ", SystemSpec.Names)}) or a path to a system JSON file.",
        HelpName = "name",
        Required = true,
    };

    static Option<bool> NoT5Option() => new("--no-t5") { Description = "The pipeline without the T5 encoder." };

    static Workload WorkloadOf(bool noT5) => noT5 ? Workload.Sd35Large.WithoutT5() : Workload.Sd35Large;

    static Command PredictionCommand()
    {
        var config = new Option<string>("--config")
        {
            Description = "A registered config (t3k_cfg2_sp2_tp2, 2x4cfg1sp0tp1, …) or <rows>x<cols>:cfg<f>@<axis>,sp<f>@<axis>,tp<f>@<axis>.",
            HelpName = "id",
            Required = true,
        };
        var system = SystemOption();
        var steps = PerfOptions.PositiveCount("--steps", "Denoising steps", 20);
        var noT5 = NoT5Option();
        var output = new Option<string?>("--out") { Description = "The JSON to write (default TestResults/costmodel/<config>_<system>_<steps>.json).", HelpName = "file.json" };
        var collectives = new Option<bool>("--collectives") { Description = "Also print the collectives table." };
        var command = new Command("prediction", "The section table of one config on one system.") { config, system, steps, noT5, output, collectives };
        command.SetAction(r => Predict(r.GetValue(config)!, r.GetValue(system)!, r.GetValue(steps), WorkloadOf(r.GetValue(noT5)), r.GetValue(output), r.GetValue(collectives)));
        return command;
    }

    static Command ValidationCommand()
    {
        var output = new Option<string>("--out") { Description = "The folder for validation.json and the charts.", DefaultValueFactory = _ => Path.Combine("TestResults", "costmodel"), HelpName = "dir" };
        var command = new Command("validation", "The calibration, the validation table (predicted without refitting) and its charts.") { output };
        command.SetAction(r => Validate(r.GetValue(output)!));
        return command;
    }

    static Command RankingCommand()
    {
        var system = SystemOption();
        var steps = PerfOptions.PositiveCount("--steps", "Denoising steps", 28);
        var target = new Option<double?>("--target") { Description = "Seconds per image to reach: marks which what-ifs reach it.", HelpName = "seconds" };
        var noT5 = NoT5Option();
        var command = new Command("ranking", "Every valid config on the system's mesh ranked by predicted seconds, with what would have to change for the best.") { system, steps, target, noT5 };
        command.SetAction(r => Rank(r.GetValue(system)!, r.GetValue(steps), r.GetValue(target), WorkloadOf(r.GetValue(noT5))));
        return command;
    }

    static Command SystemsCommand()
    {
        var command = new Command("systems", "The built-in systems: mesh, matmul TFLOP/s, DRAM GB/s.");
        command.SetAction(_ => Systems());
        return command;
    }

    static int Systems()
    {
        foreach (var name in SystemSpec.Names)
        {
            var s = SystemSpec.BuiltIn[name];
            Console.WriteLine($"{name,-20} {s.MeshRows}x{s.MeshCols}  {s.MatmulTflops.Value,5} TF  {s.DramGBps.Value,5} GB/s  {s.Description}");
        }
        return 0;
    }

    static int Predict(string config, string system, int steps, Workload workload, string? output, bool collectives)
    {
        var calibration = CostModel.Calibration;
        var prediction = CostModel.Predict(config, system, steps, workload);
        Console.WriteLine(prediction.Table());
        if (collectives) Console.WriteLine(prediction.CollectivesTable());
        Console.WriteLine($"calibration: {calibration}");
        string path = output ?? Path.Combine("TestResults", "costmodel", $"{prediction.Config.Replace(':', '_').Replace(',', '_').Replace('@', 'a')}_{prediction.System}_{prediction.Steps}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, JsonSerializer.Serialize(new { prediction, calibration }, JsonOptions));
        Console.WriteLine($"wrote {path}");
        return 0;
    }

    static int Validate(string dir)
    {
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

    static int Rank(string name, int steps, double? target, Workload workload)
    {
        var system = SystemSpec.Get(name);
        var factors = CostModel.Calibration.Factors;
        var ranked = ConfigSearch.Rank(system, workload, steps, factors, message => Console.Error.WriteLine(message));
        Console.WriteLine($"{system.Name}: every valid config, {steps} steps, {workload.Describe()}; {Predictor.Effective(system, factors)}");
        Console.WriteLine(ConfigSearch.Table(ranked));
        var best = ranked[0];
        Console.WriteLine();
        Console.WriteLine($"best: {best.Name}");
        Console.WriteLine(best.Prediction.Table());
        Console.WriteLine(best.Prediction.CollectivesTable());
        Console.WriteLine();
        Console.WriteLine($"what would have to change{(target is { } x ? $" to reach {x} s" : "")}:");
        foreach (var (whatIf, prediction) in ConfigSearch.WhatIfs(best.Config, system, workload, steps, factors))
            Console.WriteLine($"  {whatIf.Name,-42} {prediction.TotalSeconds,7:F2} s{(target is { } y ? (prediction.TotalSeconds <= y ? "  reaches the target" : "  misses") : "")}");
        return 0;
    }
}
