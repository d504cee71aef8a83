using System.CommandLine;
using System.Diagnostics;
using Sd35.Tensors.Checkpoints;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>
/// <c>load-speed --model DIR [--components a,b,...] [--fp32]</c>: loads each component of a diffusers SD3.5 folder
/// on its own, as the pipeline does, uncached, beside an uncached sequential read of the same files in the same run
/// (<see cref="LoadSpeed"/>), and reports both rates, their ratio (the loading target: ≥ 0.8), the memory that stays
/// (the model) and the peak above it while loading (the loader's staging). For scale it also reads the largest
/// weight file with <c>dd iflag=direct</c> (no page cache at all) and sets each load rate against that as well.
/// </summary>
public static class LoadSpeedCommand
{
    public static Command Command()
    {
        var model = PerfOptions.ModelFolder("A diffusers SD3.5 folder to load from.");
        var components = PerfOptions.NameList("--components", "Components to load (default: all).", LoadSpeed.AllComponents);
        var fp32 = PerfOptions.Fp32();
        var command = new Command("load-speed", "Loads each component of a model folder on its own, uncached, beside an uncached sequential read of the same files: the ratio, and the memory it takes.") { model, components, fp32 };
        command.SetAction(r => Run(r.GetValue(model)!, r.GetValue(components) is { Length: > 0 } chosen ? chosen : LoadSpeed.AllComponents, r.GetValue(fp32) ? ScalarType.Float32 : ScalarType.BFloat16));
        return command;
    }

    public static int Run(string model, IReadOnlyList<string> components, ScalarType dtype)
    {
        var largest = components.SelectMany(c => LoadSpeed.WeightFiles(Path.Combine(model, c))).OrderByDescending(f => new FileInfo(f).Length).First();
        FileAdvice.Evict(largest);
        var (ddLine, ddRate) = Dd(largest, direct: true);
        Console.WriteLine($"disk, {Path.GetFileName(Path.GetDirectoryName(largest))}/{Path.GetFileName(largest)} (first 4 GiB at most), O_DIRECT: {ddLine}");
        Console.WriteLine("per component: its files dropped from the page cache, read start to end (16 MiB reads: 'seq GB/s'), dropped again and loaded");
        Console.WriteLine("as the pipeline loads them ('load GB/s', building included); ratio = load / seq; peak = the most resident above the loaded model");
        Console.WriteLine($"{"component",-15} {"GB",7} {"uncached",8} {"seq GB/s",8} {"load s",7} {"build s",7} {"load GB/s",9} {"ratio",6} {"of dd",6} {"model GiB",9} {"peak GiB",9} {"largest tensor GiB",18}");
        foreach (var component in components)
        {
            var row = LoadSpeed.Measure(model, component, dtype);
            Console.WriteLine($"{row.Component,-15} {row.Bytes / 1e9,7:F3} {(row.Uncached ? "yes" : "no"),8} {row.SequentialRate / 1e9,8:F2} {row.LoadSeconds,7:F2} {row.BuildSeconds,7:F2} " +
                $"{row.LoadRate / 1e9,9:F2} {row.Ratio,6:F2} {(ddRate > 0 ? $"{row.LoadRate / ddRate,6:F2}" : "-"),6} {Gib(row.ModelBytes),9:F2} {Gib(row.PeakAboveModelBytes),9:F3} {Gib(row.LargestTensorBytes),18:F3}");
        }
        return 0;
    }

    /// <summary>dd's own summary line (bytes, seconds, rate) for reading up to 4 GiB of the file, and its rate in bytes/s (0 if unreadable).</summary>
    static (string Line, double Rate) Dd(string file, bool direct)
    {
        var info = new ProcessStartInfo("dd") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { $"if={file}", "of=/dev/null", "bs=16M", "count=256" }) info.ArgumentList.Add(a);
        if (direct) info.ArgumentList.Add("iflag=direct");
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(info)!;
        string text = process.StandardError.ReadToEnd();
        process.WaitForExit();
        double seconds = watch.Elapsed.TotalSeconds;
        string line = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "(dd printed nothing)";
        long copied = long.TryParse(line.Split(' ')[0], out var b) ? b : 0;
        return (line, process.ExitCode == 0 && copied > 0 ? copied / seconds : 0);
    }

    static double Gib(long bytes) => bytes / (double)(1L << 30);
}
