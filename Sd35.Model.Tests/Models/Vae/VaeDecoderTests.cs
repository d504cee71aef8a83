using Sd35.Errors;
using System.Text.Json;
using FluentAssertions;
using Sd35.Models.Vae;
using Sd35.Pipeline;
using Sd35.Tensors;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using Sd35.Tools.Synthetic;
using Xunit.Abstractions;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tests.Models.Vae;

public class VaeDecoderTests(ITestOutputHelper output)
{
    static string TinyFolder => RepoPaths.Fixtures("reference", "vae", "vae_tiny");

    /// <summary>
    /// The decoder's parameter count written out from the architecture, independently of the module code:
    /// conv_in, mid block (2 resnets + attention), up blocks, output norm and conv, optional post_quant_conv.
    /// </summary>
    static long ClosedFormParameterCount(AutoencoderKLConfig c)
    {
        static long Conv(long i, long o, long k) => o * i * k * k + o;
        static long Norm(long ch) => 2 * ch;
        static long Resnet(long i, long o) => Norm(i) + Conv(i, o, 3) + Norm(o) + Conv(o, o, 3) + (i != o ? Conv(i, o, 1) : 0);
        static long Attention(long ch) => Norm(ch) + 4 * (ch * ch + ch);
        var channels = c.BlockOutChannels.Reverse().Select(x => (long)x).ToArray();
        long top = channels[0];
        long total = Conv(c.LatentChannels, top, 3) + 2 * Resnet(top, top) + (c.MidBlockAddAttention ? Attention(top) : 0);
        long previous = top;
        for (int i = 0; i < channels.Length; i++)
        {
            total += Resnet(previous, channels[i]) + c.LayersPerBlock * Resnet(channels[i], channels[i]);
            if (i < channels.Length - 1) total += Conv(channels[i], channels[i], 3);
            previous = channels[i];
        }
        total += Norm(channels[^1]) + Conv(channels[^1], c.OutChannels, 3);
        return total + (c.UsePostQuantConv ? Conv(c.LatentChannels, c.LatentChannels, 1) : 0);
    }

    static long ParameterCount(nn.Module module) => module.parameters().Sum(p => p.numel());

    [Fact]
    public void Closed_form_count_agrees_with_the_reference_checkpoint()
    {
        using var checkpoint = Checkpoint.Open(Path.Combine(TinyFolder, "diffusion_pytorch_model.safetensors"));
        long stored = checkpoint.Keys.Where(k => k.StartsWith("decoder.")).Sum(k => checkpoint.Entry(k).Shape.Aggregate(1L, (a, b) => a * b));
        var config = new ModelFolder(TinyFolder).ReadConfig<AutoencoderKLConfig>();
        ClosedFormParameterCount(config).Should().Be(stored);
    }

    [Fact]
    public void Sd35_preset_builds_with_the_closed_form_parameter_count()
    {
        using var vae = new AutoencoderKLDecoder(AutoencoderKLConfig.Sd35);
        long count = ParameterCount(vae);
        output.WriteLine($"SD3.5 VAE decoder: {count:N0} parameters");
        count.Should().Be(ClosedFormParameterCount(AutoencoderKLConfig.Sd35)).And.Be(49_545_475);
        var names = vae.named_parameters().Select(p => p.name).ToHashSet();
        names.Should().Contain([
            "decoder.conv_in.weight", "decoder.mid_block.attentions.0.to_out.0.weight", "decoder.up_blocks.2.resnets.0.conv_shortcut.weight",
            "decoder.up_blocks.3.resnets.2.conv2.bias", "decoder.up_blocks.2.upsamplers.0.conv.weight", "decoder.conv_norm_out.weight",
        ]);
        names.Should().NotContain(n => n.StartsWith("decoder.up_blocks.3.upsamplers") || n.StartsWith("post_quant_conv"));
        vae.parameters().Should().OnlyContain(p => !p.requires_grad);
    }

    [Fact]
    public void Config_reads_diffusers_names_and_defaults()
    {
        var config = new ModelFolder(TinyFolder).ReadConfig<AutoencoderKLConfig>();
        config.LatentChannels.Should().Be(16);
        config.BlockOutChannels.Should().Equal(16, 32, 32);
        config.LayersPerBlock.Should().Be(1);
        config.NormNumGroups.Should().Be(8);
        config.ScalingFactor.Should().Be(1.5305);
        config.ShiftFactor.Should().Be(0.0609);
        config.UsePostQuantConv.Should().BeFalse();
        ModelConfig.Parse<AutoencoderKLConfig>("{}").Should().BeEquivalentTo(new AutoencoderKLConfig());
    }

    [Theory]
    [InlineData("""{"act_fn": "gelu"}""", "act_fn")]
    [InlineData("""{"block_out_channels": [32], "up_block_types": ["AttnUpDecoderBlock2D"]}""", "AttnUpDecoderBlock2D")]
    public void Other_architectures_are_refused_by_name(string json, string named)
    {
        var act = () => ModelConfig.Parse<AutoencoderKLConfig>(json);
        act.Should().Throw<ConfigException>().WithMessage($"*{named}*");
    }

    [Fact]
    public void Post_quant_conv_is_applied_before_the_decoder_when_configured()
    {
        var config = new ModelFolder(TinyFolder).ReadConfig<AutoencoderKLConfig>() with { UsePostQuantConv = true };
        using var vae = new AutoencoderKLDecoder(config);
        RandomWeights.Fill(vae, seed: 7);
        vae.post_quant_conv.Should().NotBeNull();
        using var latents = randn(1, 16, 4, 6);
        using var actual = vae.DecodeRaw(latents);
        using var noGrad = no_grad();
        using var quantized = nn.functional.conv2d(latents, vae.post_quant_conv!.weight, vae.post_quant_conv.bias);
        using var expected = vae.decoder.forward(quantized);
        actual.Equals(expected).Should().BeTrue();
    }

    [Fact]
    public void Loading_names_the_missing_key_when_the_checkpoint_lacks_post_quant_conv()
    {
        using var dir = new TempDirectory();
        File.Copy(Path.Combine(TinyFolder, "diffusion_pytorch_model.safetensors"), dir.File("diffusion_pytorch_model.safetensors"));
        var config = File.ReadAllText(Path.Combine(TinyFolder, "config.json")).Replace("\"use_post_quant_conv\": false", "\"use_post_quant_conv\": true");
        File.WriteAllText(dir.File("config.json"), config);
        var act = () => AutoencoderKLDecoder.FromFolder(new ModelFolder(dir.Path));
        act.Should().Throw<CheckpointException>().WithMessage("*post_quant_conv.weight*");
    }

    [Fact]
    public void Decode_unscales_latents_as_the_pipeline_does()
    {
        using var vae = AutoencoderKLDecoder.FromFolder(new ModelFolder(TinyFolder));
        using var latents = randn(1, 16, 4, 4);
        using var decoded = vae.Decode(latents);
        using var unscaled = latents / 1.5305 + 0.0609;
        using var raw = vae.DecodeRaw(unscaled);
        decoded.Equals(raw).Should().BeTrue();
    }

    /// <summary>Every end-to-end case (text-to-image, image-to-image, inpainting): each stores its latents after every step run and the image.</summary>
    public static TheoryData<string> PipelineCases() => Golden.Cases(Golden.CaseFolders("latents_after_step_0", "image"));

    /// <summary>
    /// The end of each reference pipeline run: the last latents, unscaled and decoded, then mapped to [0, 1], are the
    /// stored image. Checks <see cref="AutoencoderKLDecoder.Decode"/> and <see cref="ImageOutput.ToUnitRange"/> together.
    /// </summary>
    [Theory]
    [MemberData(nameof(PipelineCases))]
    public void Pipeline_image_is_decode_of_the_final_latents(string caseName)
    {
        var folder = Golden.Resolve(caseName);
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "case.json")));
        var vaeComponent = document.RootElement.GetProperty("components").GetProperty("vae").GetString()!;
        // Components are named relative to the reference root, the folder above pipeline/.
        var vaeFolder = Path.GetFullPath(Path.Combine(folder, "..", "..", vaeComponent));
        var io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
        // Image-to-image runs fewer steps than it schedules: the last latents stored are the final ones.
        int steps = io.Keys.Count(k => k.StartsWith("latents_after_step_", StringComparison.Ordinal));

        using var vae = AutoencoderKLDecoder.FromFolder(new ModelFolder(vaeFolder));
        // diffusers' inpainting pipeline unscales without the shift factor (its cases carry the mask).
        bool inpainting = io.ContainsKey("mask_image");
        using var decoded = vae.Decode(io[$"latents_after_step_{steps - 1}"], addShift: !inpainting);
        using var image = ImageOutput.ToUnitRange(decoded);
        output.WriteLine(AssertQuality.Fp32(io["image"], image, $"{caseName} image").ToString());
    }
}
