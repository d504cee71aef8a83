using System.Text.Json;
using FluentAssertions;
using Sd35.Layers;
using Sd35.Models.Vae;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using Sd35.Tests.TestSupport;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Sd35.Tests.Models.Vae;

/// <summary>
/// Every folder under fixtures/ with a VAE config (it has <c>latent_channels</c> and <c>block_out_channels</c>),
/// weights and an <c>io.safetensors</c> is a case: <c>latents</c> → <c>sample</c> = diffusers' <c>vae.decode(latents)</c>.
/// </summary>
public class VaeGoldenTests(ITestOutputHelper output)
{
    public static TheoryData<string> Cases() => Golden.Cases(Golden.Folders(IsVaeFolder, "config.json", "io.safetensors"));

    static bool IsVaeFolder(string folder)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        return document.RootElement.TryGetProperty("latent_channels", out _) && document.RootElement.TryGetProperty("block_out_channels", out _);
    }

    [Fact]
    public void There_is_at_least_one_case() => Assert.NotEmpty(Cases());

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fp32_decode_matches_diffusers(string caseName)
    {
        var folder = Golden.Resolve(caseName);
        var io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
        using var vae = AutoencoderKLDecoder.FromFolder(new ModelFolder(folder));
        using var sample = vae.DecodeRaw(io["latents"]);
        Assert.Equal(io["sample"].shape, sample.shape);
        output.WriteLine(AssertQuality.Fp32(io["sample"], sample, $"{caseName} sample").ToString());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Bf16_decode_stays_close_to_the_fp32_reference(string caseName)
    {
        var folder = Golden.Resolve(caseName);
        var io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
        using var vae = AutoencoderKLDecoder.FromFolder(new ModelFolder(folder), dtype: ScalarType.BFloat16);
        using var sample = vae.DecodeRaw(io["latents"]);
        Assert.Equal(ScalarType.BFloat16, sample.dtype);
        // bf16 keeps 8 significant bits, and the error grows through ~20 convolutions and norms.
        output.WriteLine(AssertQuality.Close(io["sample"], sample, minPcc: 0.9995, maxAbsErrorRelative: 0.03, $"{caseName} bf16 sample").ToString());
    }

    /// <summary>
    /// Kernels held in bf16 and expanded to fp32 per convolution compute exactly what the fp32 model computes on the
    /// same bf16-rounded kernels (the expansion is exact), while the held kernels take half the bytes.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Bf16_stored_kernels_compute_the_fp32_model_on_bf16_rounded_kernels(string caseName)
    {
        var folder = Golden.Resolve(caseName);
        var io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
        using var stored = AutoencoderKLDecoder.FromFolder(new ModelFolder(folder), storage: new WeightStorage { WeightDType = ScalarType.BFloat16 });
        using var reference = AutoencoderKLDecoder.FromFolder(new ModelFolder(folder));
        var kernels = stored.named_modules().Where(m => m.module is StoredWeightModule).Select(m => (m.name, Layer: (StoredWeightModule)m.module)).ToList();
        kernels.Should().NotBeEmpty();
        var referenceModules = reference.named_modules().ToDictionary(m => m.name, m => m.module);
        foreach (var (name, layer) in kernels)
        {
            layer.WeightStorage.Should().Be(GgmlType.BF16, name);
            layer.weight.dtype.Should().Be(ScalarType.BFloat16, name);
            using (no_grad()) ((StoredWeightModule)referenceModules[name]).weight.copy_(layer.weight.to(ScalarType.Float32));
        }
        using var expected = reference.DecodeRaw(io["latents"]);
        using var actual = stored.DecodeRaw(io["latents"]);
        actual.dtype.Should().Be(ScalarType.Float32);
        actual.bytes.ToArray().Should().Equal(expected.bytes.ToArray(), $"{caseName}: bf16-held kernels expand exactly to fp32");
    }
}
