using System.Text.Json;
using FluentAssertions;
using Sd35.Mesh;
using Sd35.Pipeline;
using Sd35.Tests.TestSupport;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Sd35.Tests.Pipeline;

/// <summary>
/// Image to image and inpainting against diffusers' <c>StableDiffusion3Img2ImgPipeline</c> and
/// <c>StableDiffusion3InpaintPipeline</c>: every case folder whose io holds <c>init_image</c> and recorded draws
/// (fixtures/reference/img2img/*, inpaint/*). The recorded draws are injected as the noise source; the timesteps run,
/// the latents after every step and the images must match at the fp32 bar.
/// </summary>
public class ImageToImageGoldenTests(ITestOutputHelper log)
{
    public static TheoryData<string> Cases() => Golden.Cases(Golden.CaseFolders("init_image", "draw_0", "latents_after_step_0", "image"));

    /// <summary>The text options cases (fixtures/reference/text_options/*): they store the prompt embeddings of a batch.</summary>
    public static TheoryData<string> TextOptionCases() => Golden.Cases(Golden.CaseFolders("initial_latents", "prompt_embeds", "negative_prompt_embeds"));

    [Fact]
    public void There_are_image_and_text_option_cases()
    {
        Cases().Should().NotBeEmpty();
        TextOptionCases().Should().NotBeEmpty();
    }

    /// <summary>A case's request with its image (and mask) and its recorded draws in order, checked against case.json's list.</summary>
    internal static (PipelineComponents Components, GenerationRequest Request, NoiseSource Noise, Dictionary<string, Tensor> Io) Load(string caseFolder)
    {
        var (components, request) = PipelineGoldenTests.Load(caseFolder);
        var folder = Golden.Resolve(caseFolder);
        var io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "case.json")));
        var origins = document.RootElement.GetProperty("draws").EnumerateArray().Select(o => o.GetString()!).ToList();
        var draws = Enumerable.Range(0, origins.Count).Select(i => io[$"draw_{i}"]).ToList();
        io.Keys.Count(k => k.StartsWith("draw_", StringComparison.Ordinal)).Should().Be(origins.Count, "case.json lists every draw");
        request = request with
        {
            Image = InputImage.FromTensor(io["init_image"]),
            Mask = io.TryGetValue("mask_image", out var mask) ? InputImage.FromTensor(mask) : null,
        };
        return (components, request, NoiseSource.Recorded(draws), io);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Timesteps_latents_and_image_match_diffusers(string caseFolder)
    {
        using var scope = NewDisposeScope();
        var (components, request, noise, io) = Load(caseFolder);
        int stepsRun = io.Keys.Count(k => k.StartsWith("latents_after_step_", StringComparison.Ordinal));
        request.StepsRun.Should().Be(stepsRun, "strength decides the steps run as diffusers' get_timesteps");
        var schedule = StableDiffusion3Pipeline.Schedule(components, request);
        for (int i = 0; i < stepsRun; i++)
            schedule.Timesteps[i].Should().Be(io[$"timestep_{i}"].item<float>(), $"timestep {i} run");

        var pipeline = new StableDiffusion3Pipeline(components);
        var stepLatents = new List<Tensor>();
        using var result = pipeline.Generate(request, GenerationObserver.Of(stepEnded: step => stepLatents.Add(step.Latents.clone())), noise: noise);

        stepLatents.Should().HaveCount(stepsRun);
        for (int i = 0; i < stepsRun; i++)
            log.WriteLine($"latents after step {i}: {AssertQuality.Fp32(io[$"latents_after_step_{i}"], stepLatents[i], $"{caseFolder} latents after step {i}")}");
        result.Image.shape.Should().Equal(io["image"].shape);
        log.WriteLine($"image: {AssertQuality.Fp32(io["image"], result.Image, $"{caseFolder} image")}");
    }

    [Theory]
    [MemberData(nameof(TextOptionCases))]
    public void Prompt_embeddings_of_the_text_options_match_diffusers(string caseFolder)
    {
        // prompt_2 / prompt_3 / negative_prompt_2 / 3, num_images_per_prompt and no T5, through the pipeline's own encoding stage.
        var (components, request) = PipelineGoldenTests.Load(caseFolder);
        var io = Golden.ReadAll(Path.Combine(Golden.Resolve(caseFolder), "io.safetensors"));
        using var encoded = PipelineStages.Encode(components, ScalarType.Float32, request, MeshRank.Single(), timings: null);
        var sides = new (string Key, Tensor Actual)[]
        {
            ("prompt_embeds", encoded.Positive.PromptEmbeds),
            ("pooled_prompt_embeds", encoded.Positive.PooledPromptEmbeds),
            ("negative_prompt_embeds", encoded.Negative!.PromptEmbeds),
            ("negative_pooled_prompt_embeds", encoded.Negative.PooledPromptEmbeds),
        };
        foreach (var (key, actual) in sides)
        {
            actual.shape.Should().Equal(io[key].shape, key);
            log.WriteLine($"{key}: {AssertQuality.Fp32(io[key], actual, $"{caseFolder} {key}")}");
        }
    }

    /// <summary>The no-T5 cases (components without text_encoder_3), run instead on a model that has T5 with the request's no-T5 switch (--no-t5).</summary>
    public static TheoryData<string> NoT5Cases() => Golden.Cases(Golden.CaseFolders("initial_latents", "latents_after_step_0", "image")
        .Where(folder => !File.ReadAllText(Path.Combine(folder, "case.json")).Contains("\"text_encoder_3\"", StringComparison.Ordinal)));

    [Theory]
    [MemberData(nameof(NoT5Cases))]
    public void No_t5_switch_on_a_model_with_t5_matches_diffusers_without_it(string caseFolder)
    {
        var (_, request) = PipelineGoldenTests.Load(caseFolder);
        var io = Golden.ReadAll(Path.Combine(Golden.Resolve(caseFolder), "io.safetensors"));
        var withT5 = PipelineComponents.FromCase(RepoPaths.Fixtures("reference", "pipeline", "case0", "case.json"), RepoPaths.Fixtures("reference"),
            () => Sd35.Tokenizers.TokenizerSet.Default());
        withT5.TextEncoder3.Should().NotBeNull();
        var pipeline = new StableDiffusion3Pipeline(withT5);
        var loaded = new List<string>();
        using var result = pipeline.Generate(request with { NoT5 = true }, GenerationObserver.Of(modelLoaded: load => loaded.Add(load.Component)),
            initialLatents: io["initial_latents"]);
        loaded.Should().NotContain("text_encoder_3", "--no-t5 drops T5 from the run");
        log.WriteLine($"image: {AssertQuality.Fp32(io["image"], result.Image, $"{caseFolder} image with the no-T5 switch")}");
    }

    [Theory]
    [InlineData(5, 0.6, 2)]
    [InlineData(25, 0.56, 10)] // 25·0.56 = 14.000000000000002 in float64: int(10.999…) = 10, so 15 steps run, not 14
    [InlineData(50, 0.56, 21)] // 50·0.56 = 28.000000000000004: 29 steps run
    [InlineData(10, 0.7, 3)]
    [InlineData(28, 0.35, 18)] // 28·0.35 = 9.799999999999999
    [InlineData(4, 1.0, 0)]
    [InlineData(4, 0.01, 3)]
    public void Strength_skips_steps_as_diffusers_get_timesteps(int steps, double strength, int skipped) =>
        FlowMatchEulerScheduler.StepsSkipped(steps, strength).Should().Be(skipped);
}
