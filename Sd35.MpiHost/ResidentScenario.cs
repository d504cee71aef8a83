using Sd35.Hosting;
using Sd35.Mesh;
using Sd35.Pipeline;
using static TorchSharp.torch;

namespace Sd35.MpiHost;

/// <summary>
/// Models kept between generations by every process (<see cref="ModelResidency.Resident"/>): a generation, one the
/// lead cancels after its first step (every rank must stop there, and the job go on), one whose latents are NaN
/// (every rank must fail after step 1 alike, and the job go on), and another generation with another prompt, seed and size. The MPI test compares both images with a staged in-process run and checks that
/// no process loads anything for the last one.
/// </summary>
public static class ResidentScenario
{
    public static GenerationRequest First => PipelineScenario.Request(2);

    public static GenerationRequest Last => PipelineScenario.Request(3) with { Prompt = "a red bicycle by a stone wall", Seed = 11, Width = 48, Height = 32 };

    public sealed record Outcome(Tensor First, Tensor Last, bool IsLead, int FirstLoads, int LastLoads, int CancelledAfter, int NonFiniteAt) : IDisposable
    {
        public void Dispose()
        {
            First.Dispose();
            Last.Dispose();
        }
    }

    /// <summary>Under <c>mpirun</c> one rank per process; otherwise every rank in this process.</summary>
    public static Outcome Run(ParallelConfig config, ModelResidency residency)
    {
        using var pipeline = PipelineFactory.Create(PipelineScenario.Settings(config) with { Residency = residency });
        int loads = 0;
        using var loadCount = pipeline.Observe(GenerationObserver.Of(modelLoaded: _ => Interlocked.Increment(ref loads)));

        using var first = pipeline.Generate(First);
        int firstLoads = Interlocked.Exchange(ref loads, 0);

        // Only the lead's progress is reported, so only the lead's token is set; every process passes a cancellable one.
        using var cancel = new CancellationTokenSource();
        int cancelledAfter = -1;
        try
        {
            pipeline.Generate(Last, new StepCallback(done => { if (done == 1) cancel.Cancel(); }), cancellation: cancel.Token).Dispose();
        }
        catch (GenerationCancelledException stopped)
        {
            cancelledAfter = stopped.StepsDone;
        }
        int nonFiniteAt = -1;
        try
        {
            var components = pipeline.Components;
            using var seeded = StableDiffusion3Pipeline.InitialLatents(First, components.TransformerConfig.InChannels, components.VaeConfig.ScaleFactor);
            using var nan = full_like(seeded, float.NaN);
            pipeline.Generate(First, initialLatents: nan).Dispose();
        }
        catch (Sd35.Errors.NonFiniteException error) when (error.ByEveryRank)
        {
            nonFiniteAt = error.Step ?? 0;
        }
        Interlocked.Exchange(ref loads, 0);

        using var last = pipeline.Generate(Last);
        return new Outcome(first.Image.clone(), last.Image.clone(), first.IsLead, firstLoads, loads, cancelledAfter, nonFiniteAt);
    }
}
