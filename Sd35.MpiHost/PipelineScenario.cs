using Sd35.Hosting;
using Sd35.Mesh;
using Sd35.Pipeline;
using static TorchSharp.torch;

namespace Sd35.MpiHost;

/// <summary>
/// A whole generation with the demo's built-in tiny components (text encoders and VAE tensor parallel, ring
/// attention and tp in the transformer, the guidance exchange, skip-layer guidance's broadcast) on a parallel config,
/// started by any launcher: the MPI tests run it under mpirun and in-process and compare the images to the bit.
/// </summary>
public static class PipelineScenario
{
    public static GenerationRequest Request(int steps) => new()
    {
        Prompt = "a photo of an astronaut riding a horse on the moon",
        NegativePrompt = "blurry",
        Steps = steps,
        GuidanceScale = 4.5,
        Seed = 7,
        Width = 64,
        Height = 64,
        MaxSequenceLength = 32,
        SkipLayerGuidance = new SkipLayerGuidance([1], Scale: 2.8, Start: 0.0, Stop: 1.0),
    };

    /// <summary>
    /// The image ([1, 3, H, W] in [0, 1]); under <c>mpirun</c> one rank per process, and <c>IsLead</c> says whether this
    /// process holds the lead's; otherwise every rank in this process.
    /// </summary>
    /// <param name="trace">run the denoising loop traced with this trace (captured, then checked, receive buffers kept)</param>
    public static GenerationResult Generate(ParallelConfig config, ScalarType dtype, int steps, Sd35.Mesh.Tracing.StepTrace? trace = null)
    {
        var pipeline = PipelineFactory.Create(Settings(config) with { WeightDType = dtype, ComputeDType = dtype, Trace = trace });
        return pipeline.Generate(Request(steps));
    }

    /// <summary>
    /// The built-in components on <paramref name="config"/>, the process left as it is: the in-process runs these are
    /// compared with run in a test host that sets nothing up either.
    /// </summary>
    /// <remarks>The compute dtype is given, not measured: each MPI process and the test host would measure on its own.</remarks>
    public static PipelineSettings Settings(ParallelConfig config) => new() { Parallel = config, Process = ProcessSetup.HostAsIs, ComputeDType = ScalarType.Float32 };
}
