using FluentAssertions;
using Sd35.Models.Vae;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Sd35.Tests.Models.Vae;

/// <summary>
/// The VAE encoder and its posterior against diffusers' <c>vae.encode(sample).latent_dist</c>: every case folder
/// whose io holds <c>mean</c>, <c>logvar</c> and <c>latent_sample</c> (fixtures/reference/vae_encoder/*). The
/// posterior's eps is the recorded draw <c>draw_0</c>.
/// </summary>
public class VaeEncoderTests(ITestOutputHelper output)
{
    static string TinyFolder => RepoPaths.Fixtures("reference", "vae", "vae_tiny");

    public static TheoryData<string> Cases() => Golden.Cases(Golden.CaseFolders("sample", "mean", "logvar", "std", "latent_sample", "draw_0"));

    [Fact]
    public void There_are_encoder_cases() => Cases().Should().NotBeEmpty();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Posterior_matches_diffusers(string caseName)
    {
        using var scope = NewDisposeScope();
        var io = Golden.ReadAll(Path.Combine(Golden.Resolve(caseName), "io.safetensors"));
        using var vae = AutoencoderKLEncoder.FromFolder(new ModelFolder(TinyFolder));
        using var posterior = vae.Encode(io["sample"]);
        foreach (var (key, actual) in new[] { ("mean", posterior.Mean), ("logvar", posterior.LogVar), ("std", posterior.Std) })
            output.WriteLine($"{key}: {AssertQuality.Fp32(io[key], actual, $"{caseName} {key}")}");
        using var sample = posterior.Sample(io["draw_0"]);
        output.WriteLine($"latent_sample: {AssertQuality.Fp32(io["latent_sample"], sample, $"{caseName} latent_sample")}");
    }

    [Fact]
    public void Loads_every_encoder_tensor_of_the_shared_checkpoint_and_no_decoder_tensor()
    {
        using var vae = AutoencoderKLEncoder.FromFolder(new ModelFolder(TinyFolder));
        using var checkpoint = new ModelFolder(TinyFolder).OpenCheckpoint();
        var encoderKeys = checkpoint.Keys.Where(k => k.StartsWith("encoder.", StringComparison.Ordinal) || k.StartsWith("quant_conv.", StringComparison.Ordinal));
        vae.state_dict().Keys.Should().BeEquivalentTo(encoderKeys);
    }

    [Fact]
    public void Log_variance_is_clamped_as_diffusers_does()
    {
        using var moments = cat([zeros(1, 2, 1, 1), tensor(new[] { -100f, 100f }).view(1, 2, 1, 1)], 1);
        using var posterior = new DiagonalGaussianDistribution(moments);
        posterior.LogVar.data<float>().ToArray().Should().Equal(-30f, 20f);
        using var mode = posterior.Mode();
        mode.Equals(posterior.Mean).Should().BeTrue();
    }

    [Fact]
    public void Scale_is_the_inverse_of_the_decoders_unscaling()
    {
        using var vae = AutoencoderKLEncoder.FromFolder(new ModelFolder(TinyFolder));
        using var latents = randn(1, 16, 2, 2);
        using var scaled = vae.Scale(latents);
        using var expected = (latents - 0.0609) * 1.5305;
        scaled.Equals(expected).Should().BeTrue();
    }
}
