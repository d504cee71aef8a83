using System.CommandLine;
using System.Diagnostics;
using Sd35.Diagnostics;
using Sd35.Mesh;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Tensors.Checkpoints;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>
/// <c>load-speed --model DIR [--components a,b,...] [--fp32]</c>: loads each component of a diffusers SD3.5 folder
/// on its own, as the pipeline does, and reports GB/s from disk and the memory it takes: the resident growth that
/// stays (the model) and the transient peak above it (the loader's staging, ≈ one tensor when reading straight
/// into parameters). Before that it measures the disk's sequential read rate on the largest weight file with
/// <c>dd</c>, both uncached (<c>iflag=direct</c>) and through the page cache, and reports how much of each
/// component's files was already in the page cache (<c>fincore</c>): page-cache drops need root and would hit the
/// other users of a shared machine, so the state is reported rather than forced.
/// </summary>
public static class LoadSpeedCommand
{
    static readonly string[] AllComponents = PerfOptions.ComponentFolders;

    public static Command Command()
    {
        var model = PerfOptions.ModelFolder("A diffusers SD3.5 folder to load from.");
        var components = PerfOptions.NameList("--components", "Components to load (default: all).", AllComponents);
        var fp32 = PerfOptions.Fp32();
        var command = new Command("load-speed", "Loads each component of a model folder on its own: GB/s against dd, and the memory it takes.") { model, components, fp32 };
        command.SetAction(r => Run(r.GetValue(model)!, r.GetValue(components) is { Length: > 0 } chosen ? chosen : AllComponents, r.GetValue(fp32) ? ScalarType.Float32 : ScalarType.BFloat16));
        return command;
    }

    public static void Run(string model, IReadOnlyList<string> components, ScalarType dtype)
    {
        var largest = components.SelectMany(c => WeightFiles(Path.Combine(model, c))).OrderByDescending(f => new FileInfo(f).Length).First();
        Console.WriteLine($"disk sequential read, {Path.GetFileName(Path.GetDirectoryName(largest))}/{Path.GetFileName(largest)} (first 4 GiB at most):");
        Console.WriteLine($"  uncached (dd iflag=direct): {Dd(largest, direct: true)}");
        Console.WriteLine($"  buffered (dd, page cache as it is): {Dd(largest, direct: false)}");
        Console.WriteLine("seconds = building the model (its constructors initialise every weight) + reading the checkpoint into it; read GB/s excludes the building");
        Console.WriteLine($"{"component",-15} {"GB on disk",10} {"cached",7} {"seconds",8} {"build s",8} {"GB/s",6} {"read GB/s",10} {"model GiB",10} {"transient GiB",14} {"largest tensor GiB",19}");
        foreach (var component in components)
        {
            var directory = Path.Combine(model, component);
            var files = WeightFiles(directory);
            long bytes = files.Sum(f => new FileInfo(f).Length);
            string cached = CachedFraction(files);
            long largestTensor;
            using (var checkpoint = new ModelFolder(directory).OpenCheckpoint())
                largestTensor = checkpoint.Keys.Max(k => checkpoint.Entry(k).End - checkpoint.Entry(k).Begin);
            var buildWatch = System.Diagnostics.Stopwatch.StartNew();
            using (Build(component, directory, dtype)) { }
            double buildSeconds = buildWatch.Elapsed.TotalSeconds;
            Sd35.Tensors.CpuRuntime.ReleaseFreeMemory();
            GC.Collect();
            long before = ProcessMemory.ResidentBytes;
            ProcessMemory.ResetPeak();
            var watch = Stopwatch.StartNew();
            using (var loaded = Load(component, directory, dtype))
            {
                double seconds = watch.Elapsed.TotalSeconds;
                long after = ProcessMemory.ResidentBytes, peak = ProcessMemory.PeakResidentBytes;
                // The build-only run includes first-use warm-up for the first model of a kind; then the split is meaningless.
                double readSeconds = seconds - buildSeconds;
                string readRate = readSeconds > 0.1 * seconds ? $"{bytes / 1e9 / readSeconds,10:F2}" : $"{"-",10}";
                Console.WriteLine($"{component,-15} {bytes / 1e9,10:F3} {cached,7} {seconds,8:F2} {buildSeconds,8:F2} {bytes / 1e9 / seconds,6:F2} {readRate} {Gib(after - before),10:F2} {Gib(peak - after),14:F3} {Gib(largestTensor),19:F3}");
            }
        }
    }

    static IDisposable Load(string component, string directory, ScalarType dtype) => component switch
    {
        "transformer" => SD3Transformer2DModel.FromFolder(new ModelFolder(directory), MeshRank.Single(), dtype),
        "text_encoder" or "text_encoder_2" => ClipTextModel.FromFolder(new ModelFolder(directory), MeshRank.Single(), dtype),
        "text_encoder_3" => T5EncoderModel.FromFolder(new ModelFolder(directory), MeshRank.Single(), dtype),
        "vae" => AutoencoderKLDecoder.FromFolder(new ModelFolder(directory), MeshRank.Single(), dtype),
        _ => throw new ArgumentException($"unknown component '{component}'; known: {string.Join(", ", AllComponents)}"),
    };

    /// <summary>The same model without loading: what building (and the constructors' weight initialisation) costs.</summary>
    static IDisposable Build(string component, string directory, ScalarType dtype)
    {
        var folder = new ModelFolder(directory);
        return component switch
        {
            "transformer" => new SD3Transformer2DModel(folder.ReadConfig<SD3TransformerConfig>(), MeshRank.Single(), dtype),
            "text_encoder" or "text_encoder_2" => new ClipTextModel(folder.ReadConfig<ClipTextConfig>(), MeshRank.Single(), dtype),
            "text_encoder_3" => new T5EncoderModel(folder.ReadConfig<T5Config>(), MeshRank.Single(), dtype),
            "vae" => new AutoencoderKLDecoder(folder.ReadConfig<AutoencoderKLConfig>(), MeshRank.Single(), dtype),
            _ => throw new ArgumentException($"unknown component '{component}'"),
        };
    }

    static List<string> WeightFiles(string directory) =>
        Directory.EnumerateFiles(directory, "*.safetensors").Order(StringComparer.Ordinal).ToList();

    /// <summary>dd's own summary line (bytes, seconds, rate) for reading up to 4 GiB of the file.</summary>
    static string Dd(string file, bool direct)
    {
        var info = new ProcessStartInfo("dd") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { $"if={file}", "of=/dev/null", "bs=16M", "count=256" }) info.ArgumentList.Add(a);
        if (direct) info.ArgumentList.Add("iflag=direct");
        using var process = Process.Start(info)!;
        string text = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "(dd printed nothing)";
    }

    /// <summary>The share of the files' pages in the page cache, from util-linux <c>fincore</c> ("?" where it is missing).</summary>
    static string CachedFraction(List<string> files)
    {
        try
        {
            var info = new ProcessStartInfo("fincore") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE" }) info.ArgumentList.Add(a);
            foreach (var f in files) info.ArgumentList.Add(f);
            using var process = Process.Start(info)!;
            var lines = process.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            process.WaitForExit();
            long resident = 0, size = 0;
            foreach (var parts in lines.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)))
            {
                resident += long.Parse(parts[0]);
                size += long.Parse(parts[1]);
            }
            return size == 0 ? "?" : $"{100.0 * resident / size:F0}%";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "?";
        }
    }

    static double Gib(long bytes) => bytes / (double)(1L << 30);
}
