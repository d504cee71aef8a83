using System.Diagnostics;
using Sd35.Diagnostics;
using Sd35.Layers;
using Sd35.Mesh;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Tensors;
using Sd35.Tensors.Checkpoints;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>
/// One component's loading, set against the disk in the same run: the component's own weight files read sequentially
/// from an empty page cache just before it is loaded from an empty page cache, so the ratio cancels the disk and the
/// machine's load to first order. Memory: what stays resident (the model) and the peak above it while loading.
/// </summary>
public sealed record LoadSpeedRow(
    string Component, long Bytes, bool Uncached, double SequentialSeconds, double BuildSeconds, double LoadSeconds,
    long ModelBytes, long PeakAboveModelBytes, long LargestTensorBytes)
{
    public double SequentialRate => Bytes / SequentialSeconds;
    public double LoadRate => Bytes / LoadSeconds;

    /// <summary>Load rate over the sequential read rate of the same files: the figure the loading target is set on.</summary>
    public double Ratio => LoadRate / SequentialRate;
}

/// <summary>
/// The measurement behind <c>load-speed</c> and its perf gate (Sd35.Perf.Tests <c>LoadSpeedTests</c>). Each component's
/// files are dropped from the page cache (<see cref="FileAdvice.Evict"/>: these files only, no root needed, nobody
/// else's cache touched), read sequentially in <see cref="SequentialReadBytes"/> pieces, dropped again and loaded as the
/// pipeline loads them (<c>FromFolder</c>: built without initialisation, read in file order straight into place).
/// </summary>
public static class LoadSpeed
{
    public static readonly string[] AllComponents = ["text_encoder", "text_encoder_2", "text_encoder_3", "transformer", "vae"];

    /// <summary>The reference reader's piece: large enough that the disk, not the calls, sets its rate (as <c>dd bs=16M</c>).</summary>
    public const int SequentialReadBytes = 16 << 20;

    /// <summary>The loading target: load rate over the uncached sequential read rate of the same files.</summary>
    public const double MinRatio = 0.8;

    /// <summary>Slack on the peak for the allocator's bookkeeping and the process's other threads (0–few MiB measured).</summary>
    public const long PeakSlackBytes = 32L << 20;

    /// <summary>
    /// The gate on repeated measurements of one component: the <see cref="OverallRatio"/> is at least <see cref="MinRatio"/>, every run
    /// was uncached, and no run peaked above the model by more than one staging tensor (the largest tensor, or the
    /// converting reader's piece if larger) plus <see cref="PeakSlackBytes"/>. Empty when all hold.
    /// </summary>
    public static List<string> GateFailures(IReadOnlyList<LoadSpeedRow> rows)
    {
        var failures = new List<string>();
        if (rows.Count == 0) return ["no measurement"];
        string component = rows[0].Component;
        if (!rows.All(r => r.Uncached))
            failures.Add($"{component}: the files could not be dropped from the page cache (posix_fadvise), so nothing uncached was measured");
        double ratio = OverallRatio(rows);
        if (!(ratio >= MinRatio))
            failures.Add($"{component} loads at {ratio:F2} of the uncached sequential read rate of its files ({rows.Count} runs; gate {MinRatio})");
        long staging = Math.Max(rows.Max(r => r.LargestTensorBytes), SafetensorsFile.StagingBytes);
        long peak = rows.Max(r => r.PeakAboveModelBytes);
        if (peak > staging + PeakSlackBytes)
            failures.Add($"{component}: loading peaked {peak / 1e6:F1} MB above the loaded model; the bound is one staging tensor ({staging / 1e6:F1} MB) + {PeakSlackBytes >> 20} MiB");
        return failures;
    }

    /// <summary>
    /// All runs' bytes over all their load seconds, against the same for the sequential reads: a stall in any one run
    /// (another process's burst, the VM host's cache) weighs by its seconds instead of deciding a short run's ratio.
    /// </summary>
    public static double OverallRatio(IReadOnlyList<LoadSpeedRow> rows) =>
        rows.Sum(r => r.SequentialSeconds) / rows.Sum(r => r.LoadSeconds);

    public static LoadSpeedRow Measure(string model, string component, ScalarType dtype)
    {
        var directory = Path.Combine(model, component);
        var files = WeightFiles(directory);
        long bytes = files.Sum(f => new FileInfo(f).Length);
        long largestTensor;
        using (var checkpoint = new ModelFolder(directory).OpenCheckpoint())
            largestTensor = checkpoint.Keys.Max(k => checkpoint.Entry(k).End - checkpoint.Entry(k).Begin);

        bool uncached = files.All(FileAdvice.Evict);
        double sequentialSeconds = ReadSequentially(files);

        // Building alone, as the loader builds (no initial values): what is left of the constructors' cost.
        var buildWatch = Stopwatch.StartNew();
        using (WeightInit.ForLoading())
        using (Build(component, directory, dtype)) { }
        double buildSeconds = buildWatch.Elapsed.TotalSeconds;

        CpuRuntime.ReleaseFreeMemory();
        GC.Collect();
        foreach (var file in files) FileAdvice.Evict(file);
        long before = ProcessMemory.ResidentBytes;
        ProcessMemory.ResetPeak();
        var watch = Stopwatch.StartNew();
        using var loaded = Load(component, directory, dtype);
        double seconds = watch.Elapsed.TotalSeconds;
        long after = ProcessMemory.ResidentBytes, peak = ProcessMemory.PeakResidentBytes;
        return new LoadSpeedRow(component, bytes, uncached, sequentialSeconds, buildSeconds, seconds, after - before, peak - after, largestTensor);
    }

    /// <summary>Reads the files start to end through the page cache, as a plain sequential reader (<c>cat</c>, <c>dd</c>) does; returns seconds.</summary>
    public static double ReadSequentially(IReadOnlyList<string> files)
    {
        var buffer = GC.AllocateUninitializedArray<byte>(SequentialReadBytes, pinned: true);
        var watch = Stopwatch.StartNew();
        foreach (var file in files)
        {
            using var handle = File.OpenHandle(file);
            for (long offset = 0, n; (n = RandomAccess.Read(handle, buffer, offset)) > 0;) offset += n;
        }
        return watch.Elapsed.TotalSeconds;
    }

    public static List<string> WeightFiles(string directory) =>
        Directory.EnumerateFiles(directory, "*.safetensors").Order(StringComparer.Ordinal).ToList();

    static IDisposable Load(string component, string directory, ScalarType dtype) => component switch
    {
        "transformer" => SD3Transformer2DModel.FromFolder(new ModelFolder(directory), MeshRank.Single(), dtype),
        "text_encoder" or "text_encoder_2" => ClipTextModel.FromFolder(new ModelFolder(directory), MeshRank.Single(), dtype),
        "text_encoder_3" => T5EncoderModel.FromFolder(new ModelFolder(directory), MeshRank.Single(), dtype),
        "vae" => AutoencoderKLDecoder.FromFolder(new ModelFolder(directory), MeshRank.Single(), dtype),
        _ => throw new ArgumentException($"unknown component '{component}'; known: {string.Join(", ", AllComponents)}"),
    };

    static IDisposable Build(string component, string directory, ScalarType dtype)
    {
        var folder = new ModelFolder(directory);
        return component switch
        {
            "transformer" => new SD3Transformer2DModel(folder.ReadConfig<SD3TransformerConfig>(), MeshRank.Single(), dtype),
            "text_encoder" or "text_encoder_2" => new ClipTextModel(folder.ReadConfig<ClipTextConfig>(), MeshRank.Single(), dtype),
            "text_encoder_3" => new T5EncoderModel(folder.ReadConfig<T5Config>(), MeshRank.Single(), dtype),
            "vae" => new AutoencoderKLDecoder(folder.ReadConfig<AutoencoderKLConfig>(), MeshRank.Single(), dtype),
            _ => throw new ArgumentException($"unknown component '{component}'; known: {string.Join(", ", AllComponents)}"),
        };
    }
}
