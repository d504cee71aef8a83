using FluentAssertions;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.Models.Vae;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.Mesh;
using Sd35.Tests.Pipeline;
using Sd35.Tests.TestSupport;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Sd35.Tests.Parallel.Modes;

/// <summary>
/// The pipeline's modes beyond text to image on one named config against the same request on the 1×1 config (fp32
/// CPU): image to image, inpainting, a batch of two images per prompt with a prompt per encoder, and no T5 — the
/// latents after every step and the image on every device. Each config is a derived class named by its id (PerConfigModeTests.cs), so
/// <c>dotnet test --filter &lt;id&gt;</c> selects these with the config's other tests (<see cref="ParallelModelTests"/>).
/// The requests and draws are the goldens' (their agreement with diffusers is checked on one device by
/// <see cref="ImageToImageGoldenTests"/>); the VAE encoder is checked against its golden on exactly the VAE's devices.
/// On n150_cfg1_sp1_tp1 both runs are the same program: there it checks only that the run is deterministic.
/// </summary>
[Collection(MeshRunCollection.Name)]
public abstract class PipelineModeTests(string id, ITestOutputHelper log)
{
    const double Fp32Pcc = 0.99999, Fp32AbsRel = 1e-4;

    ParallelConfig Config { get; } = ParallelConfig.Parse(id);

    /// <param name="noise">opened afresh by every device of each run, so both runs replay the same draws</param>
    void CompareWithOneDevice(PipelineComponents components, GenerationRequest request, NoiseSource noise, string mode)
    {
        using var scope = NewDisposeScope();
        var expected = DeviceRun.Generate(components, PipelineOptions.OneDevice, request, noise);
        var actual = DeviceRun.Generate(components, Config, request, noise);
        expected.LeadSteps.Should().HaveCount(request.StepsRun);
        actual.LeadSteps.Should().HaveCount(request.StepsRun, $"{id}: {mode} runs the same steps on the mesh");
        actual.Image.shape.Should().Equal(expected.Image.shape);
        // Every device's latents after every step and its image, not only the lead's.
        actual.CheckEveryDeviceAgainst(expected, Config.DeviceCount, Fp32Pcc, Fp32AbsRel, $"{id}: {mode}");
        log.WriteLine($"{mode} image: {AssertQuality.Close(expected.Image, actual.Image, Fp32Pcc, Fp32AbsRel, $"{id}: {mode} image")}");
    }

    /// <summary>A golden case's request and draws at a lower strength: two steps run (a mesh run of 32 devices is slow on CI's two cores).</summary>
    void CompareGoldenCase(string caseFolder, double strength, string mode)
    {
        var (components, request, noise, _) = ImageToImageGoldenTests.Load(caseFolder);
        request = request with { Strength = strength };
        request.StepsRun.Should().Be(2);
        CompareWithOneDevice(components, request, noise, mode);
    }

    [Fact]
    public void Image_to_image_matches_one_device() =>
        CompareGoldenCase(Path.Combine("reference", "img2img", "case0"), 0.4, "image to image (strength 0.4 of 5 steps)");

    [Fact]
    public void Inpainting_matches_one_device() =>
        CompareGoldenCase(Path.Combine("reference", "inpaint", "case0"), 0.4, "inpainting (strength 0.4 of 5 steps)");

    [Fact]
    public void Batch_of_two_with_a_prompt_per_encoder_matches_one_device()
    {
        var caseFolder = Path.Combine("reference", "text_options", "batch2_prompts");
        var (components, request) = PipelineGoldenTests.Load(caseFolder);
        request = request with { Steps = 2 };
        request.NumImagesPerPrompt.Should().Be(2);
        var io = Golden.ReadAll(Path.Combine(Golden.Resolve(caseFolder), "io.safetensors"));
        CompareWithOneDevice(components, request, NoiseSource.Recorded([io["initial_latents"]]), "2 images per prompt");
    }

    [Fact]
    public void No_t5_matches_one_device()
    {
        // The model has T5; the request drops it (--no-t5), so every text-encoder device runs without it.
        var (_, request) = PipelineGoldenTests.Load(Path.Combine("reference", "text_options", "no_t5"));
        var (withT5, _) = PipelineGoldenTests.Load(Path.Combine("reference", "pipeline", "case0"));
        CompareWithOneDevice(withT5, request with { NoT5 = true, Seed = 7 }, NoiseSource.Seeded(7), "no T5");
    }

    [Fact]
    public void Vae_encoder_matches_the_golden_on_the_decoders_devices()
    {
        var folder = new ModelFolder(RepoPaths.Fixtures("reference", "vae", "vae_tiny"));
        var io = Golden.ReadAll(RepoPaths.Fixtures("reference", "vae_encoder", "case0", "io.safetensors"));
        var results = MeshRunner.Run(DeviceMesh.Create(Config.Mesh), rank =>
        {
            var stage = rank.Place(Config).ForStage(MeshGroups.Vae);
            if (stage is null) return null;
            using var vae = AutoencoderKLEncoder.FromFolder(folder, stage);
            using var posterior = vae.Encode(io["sample"]);
            return posterior.Sample(io["draw_0"]);
        });
        var devices = results.Select((r, device) => (r, device)).Where(p => p.r is not null).Select(p => p.device).ToList();
        devices.Should().Equal(Enumerable.Range(0, Config.DeviceCount).Where(d => StagePlacement.Vae(DeviceMesh.Create(Config.Mesh), Config, d) is not null),
            $"{id}: the encoder runs exactly where the decoder runs");
        foreach (var device in devices)
            AssertQuality.Close(io["latent_sample"], results[device]!, Fp32Pcc, Fp32AbsRel, $"{id}: VAE encoder latent sample on device {device}");
    }
}
