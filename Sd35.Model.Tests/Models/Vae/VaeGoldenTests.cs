using System.Text.Json;
using Sd35.Models.Vae;
using Sd35.Tensors.Checkpoints;
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
}
