using System.Diagnostics;
using Sd35.Models.Vae;
using Sd35.Tests.TestSupport;
using Sd35.Tools.Synthetic;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Sd35.Tests.Models.Vae;

/// <summary>
/// A full-size SD3.5 decode (128×128 latents → 1024×1024) with random weights, measuring the peak memory.
/// Analytically, the largest live set is in the first resnet of the last stage: its 256-channel 1024² input (1 GiB
/// in fp32), the normalized copy (1 GiB) and a 128-channel result (0.5 GiB), plus the convolution's workspace.
/// Measured on the 2-core development machine: fp32 peak 4.17 GiB (3.77 GiB added by the decode), bf16 2.46 GiB
/// (2.13 GiB added); again 2026-12-06 on the 2-core AMD EPYC VM (23 GiB, four other agents busy): fp32 peak 4.22 GiB
/// (3.75 GiB added), bf16 2.48 GiB (2.15 GiB added). The bound is about 1.3× the larger measurement of each dtype
/// (4.90 and 2.80 GiB): a decode that kept two more 256-channel 1024² activations alive (2 GiB in fp32, 1 GiB in bf16)
/// fails it, where the former 8 GiB bound let four pass. In the memory collection, so no other test runs while the
/// high-water mark is read.
/// </summary>
[Collection(MemoryMeasurementCollection.Name)]
public class VaeMemoryTests(ITestOutputHelper output)
{
    const long GiB = 1L << 30;

    [PeakMemoryTheory]
    [Trait("Category", "Slow")]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void Decoding_a_1024_image_peaks_well_below_the_machine(ScalarType dtype)
    {
        using var vae = new AutoencoderKLDecoder(AutoencoderKLConfig.Sd35, dtype: dtype);
        RandomWeights.Fill(vae, seed: 500);
        using var latents = randn([1, 16, 128, 128], generator: new Generator(1));

        Tensor? image = null;
        var clock = Stopwatch.StartNew();
        var (before, peak) = PeakMemory.Measure(() => image = vae.DecodeRaw(latents));
        clock.Stop();
        using (image)
        {
            Assert.Equal([1L, 3, 1024, 1024], image!.shape);
            Assert.Equal(dtype, image.dtype);
            Assert.True(image.isfinite().all().item<bool>());
        }
        output.WriteLine($"1024² {dtype} decode: {clock.Elapsed.TotalSeconds:F1} s, resident before {before / (double)GiB:F2} GiB, " +
                         $"peak {peak / (double)GiB:F2} GiB, added by the decode {(peak - before) / (double)GiB:F2} GiB");
        double bound = dtype == ScalarType.Float32 ? 1.3 * 3.77 : 1.3 * 2.15;   // GiB: 4.90 and 2.80
        Assert.True(peak - before < bound * GiB, $"the decode added {(peak - before) / (double)GiB:F2} GiB; bound {bound:F2} GiB (1.3× the measured)");
    }
}
