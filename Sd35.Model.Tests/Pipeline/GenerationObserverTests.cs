using System.Diagnostics;
using FluentAssertions;
using Sd35.Diagnostics;
using Sd35.Tools.Diagnostics;
using Sd35.Pipeline;
using Sd35.Profiling;
using static TorchSharp.torch;

namespace Sd35.Tests.Pipeline;

/// <summary>
/// The one stage vocabulary (<see cref="GenerationStage"/>) and the one observer of a generation
/// (<see cref="IGenerationObserver"/>): the events' order, the image's encoding as a stage of its own (events, timings,
/// perf sections, instrumentation stamps, the memory probe's JSON), and a pipeline-wide observer that stops when disposed.
/// </summary>
public class GenerationObserverTests
{
    [Fact]
    public void Every_stage_has_one_section_and_one_label_and_the_reference_sections_keep_their_names()
    {
        GenerationStages.All.Should().Equal(GenerationStage.TextEncoding, GenerationStage.ImageEncoding, GenerationStage.Denoising, GenerationStage.VaeDecoding);
        GenerationStages.All.Select(s => s.Section()).Should().OnlyHaveUniqueItems().And.Equal("total_encoding", "image_encoding", "denoising", "vae");
        GenerationStages.All.Select(s => s.Label()).Should().OnlyHaveUniqueItems().And.Equal("text encoding", "image encoding", "denoising", "vae decoding");
        PerfSections.Targeted.Should().Contain([GenerationStage.TextEncoding.Section(), GenerationStage.Denoising.Section(), GenerationStage.VaeDecoding.Section()],
            "the perf targets name the reference's sections");
        FiniteCheck.VaeDecoding.Should().Be(GenerationStage.VaeDecoding.Label());
    }

    [Fact]
    public void Image_to_image_reports_its_image_encoding_as_a_stage_of_its_own_in_every_report()
    {
        var (components, request, noise, _) = ImageToImageGoldenTests.Load(Path.Combine("reference", "img2img", "case0"));
        var pipeline = new StableDiffusion3Pipeline(components);
        var events = new List<string>();
        var loads = new List<string>();
        var steps = new List<(int Index, int Count)>();
        var watch = GenerationObserver.Of(
            stageStarted: stage => events.Add($"start {stage}"),
            stageEnded: stage => events.Add($"end {stage}"),
            stepEnded: step => { events.Add("step"); steps.Add((step.Index, step.Count)); },
            modelLoaded: load => loads.Add(load.Component));
        var probe = new StageMemoryProbe();
        var sections = new SectionsSeen();
        probe.Start();
        var clock = Stopwatch.StartNew();
        GenerationResult result;
        using (Instrumentation.Install(sections)) result = pipeline.Generate(request, GenerationObserver.Combine(watch, probe), noise: noise);
        using (result)
        {
            int n = request.StepsRun;
            events.Should().Equal(["start TextEncoding", "end TextEncoding", "start ImageEncoding", "end ImageEncoding", "start Denoising",
                .. Enumerable.Repeat("step", n), "end Denoising", "start VaeDecoding", "end VaeDecoding"]);
            steps.Should().Equal(Enumerable.Range(0, n).Select(i => (i, n)));
            loads.Should().Contain(["vae_encoder", "vae"]);

            var timings = result.Timings;
            timings.Seconds(GenerationStage.ImageEncoding).Should().BePositive();
            timings.Rows().Select(r => r.Stage).Should().Contain("image encoding");
            var perf = timings.Sections(clock.Elapsed.TotalSeconds);
            perf[GenerationStage.ImageEncoding.Section()].Should().Be(timings.ImageEncodingSeconds);
            perf[GenerationStage.VaeDecoding.Section()].Should().Be(timings.DecodingSeconds, "vae is the decoder's section only");

            sections.Seen.Should().Contain([PerfSections.ClipEncoding, PerfSections.ImageEncoding, PerfSections.Step, PerfSections.Vae],
                "the VAE encoder's ops are stamped with its own section, apart from the decoder's");

            var json = probe.ToJson(timings)["sections"]!.AsObject().Select(p => p.Key).ToList();
            json.Should().Equal(["total_encoding", "image_encoding", "denoising", "vae", .. Enumerable.Range(0, n).Select(PerfSections.DenoisingStep), "total"]);
            probe.Stages(timings).Select(s => s.Stage).Should().Equal(GenerationStage.TextEncoding, GenerationStage.ImageEncoding, GenerationStage.Denoising, GenerationStage.VaeDecoding);
        }
    }

    [Fact]
    public void A_pipeline_wide_observer_sees_every_generation_until_disposed()
    {
        var (components, request) = PipelineGoldenTests.Load(Path.Combine("reference", "pipeline", "case0"));
        request = request with { Steps = 1 };
        var pipeline = new StableDiffusion3Pipeline(components);
        int steps = 0, ownSteps = 0;
        var watching = pipeline.Observe(GenerationObserver.Of(stepEnded: _ => steps++));
        using (pipeline.Generate(request, new StepCallback(_ => ownSteps++))) { }
        using (pipeline.Generate(request)) { }
        watching.Dispose();
        using (pipeline.Generate(request)) { }
        (steps, ownSteps).Should().Be((2, 1), "the pipeline's observer saw the two generations before it was disposed, the generation's own its one");
    }

    sealed class SectionsSeen : IInstrumentationSink
    {
        public HashSet<string> Seen { get; } = [];
        public void Op(in OpSample op) => Seen.Add(op.Section);
        public void BeforeCollective(CollectiveCall call) { }
        public void Collective(CollectiveSample collective) { }
    }
}
