using FluentAssertions;
using Sd35.Errors;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tests.Pipeline;

public class PipelineStagingTests
{
    static long LiveTensors() => DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;

    [Fact]
    public void Each_stage_releases_its_models_before_the_next_loads()
    {
        var (components, request) = PipelineGoldenTests.Load(Path.Combine("reference", "pipeline", "case0"));
        var pipeline = new StableDiffusion3Pipeline(components);
        int transformerTensors;
        using (var transformer = Sd35.Models.Transformer.SD3Transformer2DModel.FromFolder(components.Transformer)) transformerTensors = transformer.parameters().Count();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long baseline = LiveTensors();
        var liveAfter = new Dictionary<GenerationStage, long>();
        long liveWhileDenoising = 0;
        int testThread = Environment.CurrentManagedThreadId;
        var observedOn = new HashSet<int>();
        var stages = new List<(GenerationStage Stage, bool Started)>();
        var watch = GenerationObserver.Of(
            stageStarted: stage => stages.Add((stage, true)),
            stageEnded: stage => { stages.Add((stage, false)); observedOn.Add(Environment.CurrentManagedThreadId); liveAfter[stage] = LiveTensors() - baseline; },
            stepEnded: _ => { observedOn.Add(Environment.CurrentManagedThreadId); liveWhileDenoising = Math.Max(liveWhileDenoising, LiveTensors() - baseline); });

        using var result = pipeline.Generate(request, watch);

        // Positive controls: the counter is per thread and the baseline is this thread's, so the counts mean something only
        // if the pipeline ran here (a 1×1 generation runs inline) — on another thread every "≤ N live" bound below would
        // pass vacuously; and it sees the pipeline's tensors: the transformer's parameters are live while it denoises.
        observedOn.Should().Equal([testThread], "the stages must run on the test thread, whose tensors the counter counts");
        liveWhileDenoising.Should().BeGreaterThanOrEqualTo(transformerTensors, "the transformer's parameters are live while it denoises");

        // Between stages only the prompt embeddings (4 tensors) or the latents cross over; the smallest model
        // released (the tiny VAE decoder) alone holds over 50 tensors, so a model kept alive shows up at once.
        stages.Should().Equal([(GenerationStage.TextEncoding, true), (GenerationStage.TextEncoding, false), (GenerationStage.Denoising, true),
            (GenerationStage.Denoising, false), (GenerationStage.VaeDecoding, true), (GenerationStage.VaeDecoding, false)], "each stage starts, then ends, in order");
        liveAfter.Keys.Should().Equal(GenerationStage.TextEncoding, GenerationStage.Denoising, GenerationStage.VaeDecoding);
        liveAfter[GenerationStage.TextEncoding].Should().BeLessThanOrEqualTo(8, "the text encoders must be gone after encoding");
        liveAfter[GenerationStage.Denoising].Should().BeLessThanOrEqualTo(4, "the transformer and the prompt embeddings must be gone after denoising");
        liveAfter[GenerationStage.VaeDecoding].Should().BeLessThanOrEqualTo(2, "only the image may remain after decoding");
    }

    [Theory]
    [InlineData(30, 32, "width: must be a positive multiple of 8")]
    [InlineData(32, 0, "height: must be a positive multiple of 8")]
    public void Image_sizes_that_are_not_multiples_of_the_patch_grid_are_rejected_before_any_work(int width, int height, string expected)
    {
        var (components, request) = PipelineGoldenTests.Load(Path.Combine("reference", "pipeline", "case0"));
        var pipeline = new StableDiffusion3Pipeline(components);
        bool anyStage = false;
        var act = () => pipeline.Generate(request with { Width = width, Height = height }, GenerationObserver.Of(stageStarted: _ => anyStage = true));
        act.Should().Throw<Sd35.Errors.RequestException>().WithMessage($"*{expected}*");
        anyStage.Should().BeFalse();
    }

    [Fact]
    public void Request_validation_names_the_bad_value()
    {
        var request = new GenerationRequest { Prompt = "x" };
        void Fails(GenerationRequest bad, string field, string message) =>
            FluentActions.Invoking(() => bad.Validate(16, maxPixels: 3072)).Should().Throw<Sd35.Errors.RequestException>()
                .Where(e => e.Field == field).WithMessage(message);
        Fails(request with { Steps = 0 }, "steps", "steps: must be in 1..1000; got 0");
        Fails(request with { Steps = 1001 }, "steps", "*1..1000*1001");
        Fails(request with { Width = 1000 }, "width", "width: must be a positive multiple of 16 pixels; got 1000");
        Fails(request with { Height = 4096 }, "height", "height: 4096 pixels is beyond the model's position-embedding grid; at most 3072 pixels");
        Fails(request with { GuidanceScale = double.NaN }, "guidance", "guidance: must be a number in 0..100; got NaN");
        Fails(request with { GuidanceScale = 1e20 }, "guidance", "*0..100*1E+20");
        Fails(request with { MaxSequenceLength = 513 }, "max_sequence_length", "*1..512*513");
        // diffusers' image-to-image and inpainting pipelines have no skip-layer guidance.
        Fails(request with { Width = 64, Height = 64, Image = new InputImage(3, 64, 64, new float[3 * 64 * 64]), SkipLayerGuidance = SkipLayerGuidance.Sd35 },
            "skip_layer_guidance", "skip_layer_guidance: applies to text to image only*");
        FluentActions.Invoking(() => (request with { SkipLayerGuidance = new SkipLayerGuidance([7, 38]) }).Validate(16, transformerLayers: 38))
            .Should().Throw<RequestException>().WithMessage("skip_layer_guidance: layer 38 *0..37*");
        FluentActions.Invoking(() => (request with { Width = 3088 }).Validate(16, maxPixels: 3072))
            .Should().Throw<RequestException>().WithMessage("width: 3088 pixels *at most 3072 pixels*");
    }

    /// <summary>A model folder holding only the configs of the tiny reference components (no weights).</summary>
    static string FakeModelFolder(TestSupport.TempDirectory dir, params string[] parts)
    {
        var configs = new Dictionary<string, string>
        {
            ["transformer"] = "transformer/tiny", ["vae"] = "vae/vae_tiny", ["text_encoder"] = "text_encoder/clip_l_tiny",
            ["text_encoder_2"] = "text_encoder/clip_g_tiny", ["text_encoder_3"] = "text_encoder/t5_tiny",
        };
        foreach (var part in parts)
        {
            Directory.CreateDirectory(Path.Combine(dir.Path, part));
            if (part == "scheduler")
                File.Copy(RepoPaths.Fixtures("reference", "scheduler", "scheduler_config.json"), Path.Combine(dir.Path, part, "scheduler_config.json"));
            else if (configs.TryGetValue(part, out var source))
                File.Copy(RepoPaths.Fixtures("reference", source, "config.json"), Path.Combine(dir.Path, part, "config.json"));
        }
        return dir.Path;
    }

    [Fact]
    public void Missing_model_part_is_named()
    {
        using var dir = new TestSupport.TempDirectory();
        var act = () => PipelineComponents.FromDiffusersFolder(FakeModelFolder(dir, "transformer", "text_encoder", "text_encoder_2", "text_encoder_3"));
        act.Should().Throw<ModelFolderException>().WithMessage("*'vae/'*");
    }

    [Fact]
    public void A_model_without_T5_runs_with_zeros_in_its_place_as_diffusers_allows()
    {
        using var dir = new TestSupport.TempDirectory();
        var components = PipelineComponents.FromDiffusersFolder(
            FakeModelFolder(dir, "transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"));
        components.TextEncoder3.Should().BeNull();
    }

    [Fact]
    public void A_malformed_config_is_an_error_naming_the_file()
    {
        using var dir = new TestSupport.TempDirectory();
        var path = Path.Combine(dir.Path, "config.json");
        File.WriteAllText(path, "{\"num_layers\": \"3\"}");
        var act = () => ModelConfig.Read<Sd35.Models.Transformer.SD3TransformerConfig>(path);
        act.Should().Throw<ConfigException>().WithMessage($"{path}: $.num_layers: *integer*");
    }

    [Fact]
    public void Skip_layer_guidance_window_follows_diffusers()
    {
        var slg = SkipLayerGuidance.Sd35;
        Enumerable.Range(0, 28).Where(i => slg.AppliesAt(i, 28)).Should().Equal(1, 2, 3, 4, 5);
    }
}
