using System.Collections.Concurrent;
using FluentAssertions;
using Sd35.Mesh;
using Sd35.Pipeline;
using Sd35.Tests.Mesh;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tests.Pipeline;

/// <summary>
/// <see cref="ModelResidency.Resident"/>: each device's models load once and serve every later generation with the
/// very bits a staged pipeline computes, on one device and on a mesh (in-process, where rank threads and groups are
/// new for every generation); dispose releases them; a generation that is cancelled or throws leaves them usable.
/// </summary>
[Collection(MeshRunCollection.Name)]
public class ResidentModelsTests
{
    static readonly (PipelineComponents Components, GenerationRequest Request) Case = PipelineGoldenTests.Load(Path.Combine("reference", "pipeline", "case1"));

    static GenerationRequest First => Case.Request with { Seed = 7, Steps = 2, GuidanceScale = 4.5 };

    /// <summary>A different prompt, seed and size; without guidance unless the config splits guidance over two submeshes.</summary>
    static GenerationRequest Second(bool guided) => Case.Request with
    {
        Prompt = "a red bicycle leaning on a stone wall",
        NegativePrompt = "",
        Seed = 11,
        Steps = 3,
        Width = 64,
        Height = 32,
        GuidanceScale = guided ? 3.0 : 1.0,
        SkipLayerGuidance = guided ? new SkipLayerGuidance([1], Start: 0, Stop: 1) : null,
    };

    sealed class Loads
    {
        public ConcurrentQueue<ModelLoad> All { get; } = new();
        public ModelLoad[] Take()
        {
            var taken = new List<ModelLoad>();
            while (All.TryDequeue(out var load)) taken.Add(load);
            return [.. taken];
        }
    }

    static (StableDiffusion3Pipeline Pipeline, Loads Loads) Make(string config, ModelResidency residency)
    {
        var pipeline = new StableDiffusion3Pipeline(Case.Components, options: new PipelineOptions { Parallel = ParallelConfig.Parse(config), Residency = residency });
        var loads = new Loads();
        pipeline.Observe(GenerationObserver.Of(modelLoaded: loads.All.Enqueue));
        return (pipeline, loads);
    }

    static Tensor Image(StableDiffusion3Pipeline pipeline, GenerationRequest request, out StageTimings timings)
    {
        using var result = pipeline.Generate(request);
        timings = result.Timings;
        return result.Image.clone();
    }

    [Theory]
    [InlineData("n150_cfg1_sp1_tp1", false)]
    [InlineData("t3k_cfg2_sp2_tp2", true)]
    public void Resident_generations_give_the_staged_images_to_the_bit_and_the_second_loads_nothing(string config, bool secondGuided)
    {
        var requests = new[] { First, Second(secondGuided) };
        var (staged, stagedLoads) = Make(config, ModelResidency.Staged);
        var expected = requests.Select(r => Image(staged, r, out _)).ToArray();
        var stagedPerGeneration = stagedLoads.Take().Length;

        var (resident, residentLoads) = Make(config, ModelResidency.Resident);
        using (resident)
        {
            using var first = Image(resident, requests[0], out var firstTimings);
            var firstLoads = residentLoads.Take();
            using var second = Image(resident, requests[1], out var secondTimings);
            var secondLoads = residentLoads.Take();

            first.ShouldBeBitEqual(expected[0], $"{config}: first generation, resident vs staged");
            second.ShouldBeBitEqual(expected[1], $"{config}: second generation (other prompt, seed, size, guidance), resident vs staged");
            firstLoads.Should().NotBeEmpty();
            firstLoads.Select(l => (l.DeviceId, l.Component)).Should().OnlyHaveUniqueItems("each device loads each of its models once");
            secondLoads.Should().BeEmpty($"{config}: the second generation uses the kept models");
            stagedPerGeneration.Should().Be(2 * firstLoads.Length, "a staged pipeline loads the same models in every generation");
            resident.ResidentModelCount.Should().Be(firstLoads.Length);
            Console.WriteLine($"{config}: {firstLoads.Length} loads in the first generation ({firstTimings.LoadSeconds:F3} s), second generation load time {secondTimings.LoadSeconds:F4} s");
        }
        resident.ResidentModelCount.Should().Be(0, "dispose releases the kept models");
    }

    [Fact]
    public void Dispose_releases_the_resident_models_and_ends_the_pipeline()
    {
        var (pipeline, _) = Make("n150_cfg1_sp1_tp1", ModelResidency.Resident);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long LiveTensors() => DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        long before = LiveTensors();
        // Inside a dispose scope, as the server runs a request: the kept models must outlive it.
        using (NewDisposeScope()) Image(pipeline, First, out _).Dispose();
        long kept = LiveTensors() - before;
        using (NewDisposeScope()) Image(pipeline, First, out _).Dispose();

        pipeline.Dispose();

        kept.Should().BeGreaterThan(100, "the five tiny models hold hundreds of tensors while resident");
        (LiveTensors() - before).Should().BeLessThanOrEqualTo(2, "dispose releases every kept tensor");
        pipeline.ResidentModelCount.Should().Be(0);
        FluentActions.Invoking(() => pipeline.Generate(First)).Should().Throw<ObjectDisposedException>();
    }

    [Theory]
    [InlineData("n150_cfg1_sp1_tp1")]
    [InlineData("t3k_cfg2_sp2_tp2")]
    public void A_cancelled_or_failed_generation_leaves_the_resident_models_usable(string config)
    {
        var (staged, _) = Make(config, ModelResidency.Staged);
        using var expected = Image(staged, Second(guided: true), out _);
        var (pipeline, loads) = Make(config, ModelResidency.Resident);
        using (pipeline)
        {
            using var cancel = new CancellationTokenSource();
            var stopAfterFirstStep = new StepCallback(done => { if (done == 1) cancel.Cancel(); });
            FluentActions.Invoking(() => pipeline.Generate(First with { Steps = 3 }, stopAfterFirstStep, cancellation: cancel.Token))
                .Should().Throw<GenerationCancelledException>().Which.StepsDone.Should().Be(1, "every device stops at the step boundary the lead saw");
            loads.Take().Should().NotContain(l => l.Component == "vae", "the run stopped before decoding");

            var failing = GenerationObserver.Of(stepEnded: _ => throw new InvalidOperationException("a failure inside the denoising loop"));
            FluentActions.Invoking(() => pipeline.Generate(First, failing)).Should().Throw<InvalidOperationException>();

            using var after = Image(pipeline, Second(guided: true), out _);
            after.ShouldBeBitEqual(expected, $"{config}: a generation after a cancelled and a failed one, resident vs staged");
            loads.Take().Select(l => l.Component).Distinct().Should().Equal(["vae"], "only the VAE, which the stopped runs never reached, loads now");
        }
    }
}
