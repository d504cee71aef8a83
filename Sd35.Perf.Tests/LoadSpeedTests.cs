using FluentAssertions;
using Sd35.Perf.Harness;
using Sd35.Tools.Synthetic;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Sd35.Perf.Tests;

/// <summary>
/// The loading gate (issue 24, "loading at disk speed"): the transformer and T5 load from an empty page cache at ≥ 80 %
/// of the rate at which the same files are read sequentially, uncached, beside them in the same run, and the peak
/// while loading stays within one staging tensor above the model. The model is the <c>load-check</c> preset (≈ 0.6 GB
/// of tensors shaped like SD3.5 Large's at a smaller width), written once per run; the ratio over five runs (all bytes over all seconds), so the
/// disk's and the machine's speed cancel. Uncached without root and without touching anyone else's page cache: only
/// these files are evicted (<see cref="FileAdvice.Evict"/>).
/// </summary>
[Trait("Category", "Perf")]
public sealed class LoadSpeedTests(ITestOutputHelper output) : IDisposable
{
    const int Runs = 5;

    readonly string _model = Path.Combine(Path.GetTempPath(), $"sd35-load-check-{Environment.ProcessId}");

    [Theory]
    [InlineData("transformer")]
    [InlineData("text_encoder_3")]
    public void Loads_at_disk_speed_within_one_staging_tensor(string component)
    {
        if (!Directory.Exists(Path.Combine(_model, component)))
            SyntheticModelFolder.Write(_model, SyntheticModelPreset.LoadCheck, seed: 0, only: [component]);
        var rows = Enumerable.Range(0, Runs).Select(_ => LoadSpeed.Measure(_model, component, ScalarType.BFloat16)).ToList();
        foreach (var r in rows)
            output.WriteLine($"{component}: {r.Bytes / 1e9:F3} GB, uncached {r.Uncached}: sequential {r.SequentialRate / 1e9:F2} GB/s, load {r.LoadRate / 1e9:F2} GB/s " +
                $"(build {r.BuildSeconds:F3} s of {r.LoadSeconds:F3} s), ratio {r.Ratio:F2}; model {r.ModelBytes / 1e6:F0} MB, peak above it {r.PeakAboveModelBytes / 1e6:F1} MB, largest tensor {r.LargestTensorBytes / 1e6:F1} MB");

        output.WriteLine($"{component}: ratio over all runs {LoadSpeed.OverallRatio(rows):F2}, median {SampleStatistics.MedianOf(rows.Select(r => r.Ratio).ToList()):F2} (gate ≥ {LoadSpeed.MinRatio} on the former)");
        var failures = LoadSpeed.GateFailures(rows);
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }

    public void Dispose()
    {
        if (Directory.Exists(_model)) Directory.Delete(_model, recursive: true);
    }
}

/// <summary>The loading gate's verdicts on made-up measurements: it passes a load at disk speed and fails each way a load can miss it.</summary>
public sealed class LoadSpeedGateTests
{
    const long Mb = 1_000_000;

    static LoadSpeedRow Row(double loadSeconds, long peakAbove = 0, bool uncached = true) =>
        new("transformer", Bytes: 300 * Mb, uncached, SequentialSeconds: 0.30, BuildSeconds: 0.001, loadSeconds,
            ModelBytes: 300 * Mb, PeakAboveModelBytes: peakAbove, LargestTensorBytes: 40 * Mb);

    [Fact]
    public void A_load_at_disk_speed_within_one_tensor_passes() =>
        LoadSpeed.GateFailures([Row(0.33), Row(0.36, peakAbove: 40 * Mb), Row(0.35)]).Should().BeEmpty();

    [Fact]
    public void A_load_at_half_the_disk_rate_fails() =>
        LoadSpeed.GateFailures([Row(0.60), Row(0.62), Row(0.30)]).Should().ContainSingle().Which.Should().Contain("0.59 of the uncached sequential read rate");

    [Fact]
    public void A_second_copy_of_a_tensor_fails() =>
        LoadSpeed.GateFailures([Row(0.33), Row(0.33, peakAbove: 120 * Mb), Row(0.33)]).Should().ContainSingle().Which.Should().Contain("peaked 120.0 MB above the loaded model");

    [Fact]
    public void A_cached_read_is_not_a_measurement() =>
        LoadSpeed.GateFailures([Row(0.33, uncached: false)]).Should().ContainSingle().Which.Should().Contain("could not be dropped from the page cache");
}
