using FluentAssertions;
using Sd35.Numerics;
using static TorchSharp.torch;

namespace Sd35.Tests.Numerics;

/// <summary>
/// The rule that picks the CPU's compute dtype from measured rates (<see cref="ComputeDTypeProbe.Faster"/>,
/// <see cref="ComputeDTypeProbe.Rate"/>), tested on given rates and on made-up timing samples: nothing here is timed,
/// so nothing depends on this machine or its load.
/// </summary>
/// <remarks>In the mesh runs' collection: one test measures, and the measurement sets the process-global intra-op threads to one.</remarks>
[Collection(Sd35.Tests.Mesh.MeshRunCollection.Name)]
public sealed class ComputeDTypeProbeTests
{
    const ScalarType Fp32 = ScalarType.Float32, Bf16 = ScalarType.BFloat16;

    [Theory]
    [InlineData(100, 100)]  // a tie
    [InlineData(100, 129)]  // bf16 faster, but by less than the margin: fp32 is the more accurate one
    [InlineData(35, 42)]    // a native-bf16 GEMM squeezed by load (docs/full-size.md, 12:39 at load 18.6): 1.2×
    [InlineData(87.2, 84.5)]
    public void A_near_tie_goes_to_fp32(double fp32, double bf16) => ComputeDTypeProbe.Faster(fp32, bf16).Should().Be(Fp32);

    [Theory]
    [InlineData(100, 130)]  // exactly the margin
    [InlineData(150, 600)]  // AMX
    [InlineData(53, 327)]   // the native-bf16 GEMM of docs/full-size.md (12:52)
    public void A_clear_bf16_win_goes_to_bf16(double fp32, double bf16) => ComputeDTypeProbe.Faster(fp32, bf16).Should().Be(Bf16);

    [Theory]
    [InlineData(110, 17)]   // issue 24's 2-core AVX2 EPYC without native bf16: GEMMs
    [InlineData(180, 20)]
    [InlineData(103, 0.3)]  // and its 3×3 convolution
    public void The_avx2_figures_go_to_fp32(double fp32, double bf16) => ComputeDTypeProbe.Faster(fp32, bf16).Should().Be(Fp32);

    [Theory]
    [InlineData(0, 0)]
    [InlineData(100, 0)]
    [InlineData(double.NaN, 100)]
    [InlineData(100, double.NaN)]
    public void A_failed_measurement_never_selects_bf16(double fp32, double bf16) => ComputeDTypeProbe.Faster(fp32, bf16).Should().Be(Fp32);

    [Fact]
    public void Given_rates_pick_per_operation_and_are_reported()
    {
        var amx = new ComputeDTypeProbe(150, 600, 103, 20);
        (amx.Gemm, amx.Conv).Should().Be((Bf16, Fp32));
        amx.ToString().Should().Be("GEMM bf16 (fp32 150, bf16 600 GFLOP/s), conv fp32 (fp32 103.0, bf16 20.0 GFLOP/s)", "given rates have no sampling to report");
        var measured = amx with { Seconds = 0.42, Pairs = (31, 200) };
        measured.ToString().Should().EndWith("; bf16 needs ≥ 1.3×; best of 31/200 interleaved pairs, 0.42 s");
    }

    /// <summary>
    /// Made-up samples of a busy machine: each run is slowed 2–10× with probability <paramref name="hitRate"/>, each side
    /// independently (load comes in bursts that hit one run of a pair and not the other). The best of 20 interleaved
    /// pairs recovers the machine's own ratio (a side goes without one unslowed run only with probability hitRate^20, under
    /// 4e-5 here), so the pick is the quiet machine's for every one of 200 seeded loads.
    /// </summary>
    [Theory]
    [InlineData(4.5e-3, 2.0e-3, 0.5, Bf16)]   // native bf16 GEMM, 2.25× faster
    [InlineData(4.5e-3, 2.0e-3, 0.6, Bf16)]   // the same with most runs slowed
    [InlineData(4.5e-3, 24e-3, 0.5, Fp32)]    // the AVX2 GEMM: bf16 5× slower
    [InlineData(4.5e-3, 4.0e-3, 0.5, Fp32)]   // bf16 1.125× faster: within the margin, whatever the load
    [InlineData(4.5e-3, 4.0e-3, 0.6, Fp32)]
    public void Noisy_samples_give_the_quiet_machines_pick(double fp32Seconds, double bf16Seconds, double hitRate, ScalarType expected)
    {
        const double flops = 0.45e9;
        const int pairs = 20;
        for (int seed = 0; seed < 200; seed++)
        {
            var random = new Random(seed);
            double Loaded(double seconds) => random.NextDouble() < hitRate ? seconds * (2 + 8 * random.NextDouble()) : seconds;
            var fp32 = Enumerable.Range(0, pairs).Select(_ => Loaded(fp32Seconds)).ToList();
            var bf16 = Enumerable.Range(0, pairs).Select(_ => Loaded(bf16Seconds)).ToList();
            ComputeDTypeProbe.Faster(ComputeDTypeProbe.Rate(flops, fp32), ComputeDTypeProbe.Rate(flops, bf16))
                .Should().Be(expected, $"seed {seed}: fp32 best {fp32.Min() * 1e3:F2} ms, bf16 best {bf16.Min() * 1e3:F2} ms");
        }
    }

    [Fact]
    public void The_measurement_stops_at_its_minimum_pairs_once_the_budget_is_spent()
    {
        // A zero budget: exactly the minimum, whatever the machine's speed (counts, not times, are asserted).
        var probe = ComputeDTypeProbe.Measure(new ComputeDTypeProbe.Sampling(TimeSpan.Zero, MinPairs: 2, MaxPairs: 50));
        probe.Pairs.Should().Be((2, 2));
        new[] { probe.Fp32GemmGflops, probe.Bf16GemmGflops, probe.Fp32ConvGflops, probe.Bf16ConvGflops }.Should().OnlyContain(r => r > 0);
        probe.Seconds.Should().BePositive();
    }
}
