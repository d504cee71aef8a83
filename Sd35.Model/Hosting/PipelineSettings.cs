using Sd35.Mesh;
using Sd35.Mesh.Mpi;
using Sd35.Pipeline;
using Sd35.Tensors.Quantization;
using static TorchSharp.torch;

namespace Sd35.Hosting;

/// <summary>
/// Everything a program decides about its pipeline, in one record: where the weights come from, the mesh, the device,
/// the dtypes, how long models stay loaded, the limits on what a generation may ask, the step trace and what the
/// process sets up first. <see cref="PipelineFactory.Create(PipelineSettings)"/> turns it into a ready pipeline; the
/// demo's command line and the server's configuration map onto it through <see cref="PipelineSettingOptions"/>.
/// </summary>
public sealed record PipelineSettings
{
    /// <summary>A diffusers folder or single file, and per-component replacements; default: the built-in tiny components.</summary>
    public ModelSource Source { get; init; } = ModelSource.BuiltIn;

    /// <summary>The device mesh of the denoising loop; default one device.</summary>
    public ParallelConfig Parallel { get; init; } = PipelineOptions.OneDevice;

    /// <summary>What every device of the run is bound to: the CPU, or the CUDA GPUs round-robin.</summary>
    public ComputeDevice Device { get; init; } = ComputeDevice.Cpu;

    /// <summary>The dtype the weights are stored in (float32, or bfloat16 with <c>--bf16</c>), apart from the dtype they compute in.</summary>
    public ScalarType WeightDType { get; init; } = ScalarType.Float32;

    /// <summary>The dtype the layers compute in; null (<c>auto</c>): whichever of float32 and bfloat16 this CPU runs faster, measured at start (<see cref="PipelineFactory.Precision"/>).</summary>
    public ScalarType? ComputeDType { get; init; }

    /// <summary>Linear weights quantized at load to this ggml block type where rows are whole blocks; null: none (a GGUF file's blocks are kept either way).</summary>
    public GgmlType? Quantization { get; init; }

    /// <summary>Staged (default): each generation loads and releases each stage's models; resident: loaded once, kept.</summary>
    public ModelResidency Residency { get; init; } = ModelResidency.Staged;

    /// <summary>What a generation may ask of this pipeline (a server narrows it; the library's own bounds apply anyway).</summary>
    public GenerationLimits Limits { get; init; } = GenerationLimits.Library;

    /// <summary>The step trace (<see cref="PipelineOptions.Trace"/>); null: untraced.</summary>
    public Sd35.Mesh.Tracing.StepTrace? Trace { get; init; }

    /// <summary>The process-wide set-up done before the first tensor; default: what a program does (<see cref="ProcessSetup.Program"/>).</summary>
    public ProcessSetup Process { get; init; } = ProcessSetup.Program;

    /// <summary>The collectives' settings (timeouts) under either launcher.</summary>
    public MeshRunOptions Mesh { get; init; } = PipelineOptions.MeshDefaults;

    /// <summary>Under <c>mpirun</c>: how a failing rank reports, whether calls are cross-checked, where the process map is printed. <see cref="MpiRunOptions.Config"/> is set from <see cref="Parallel"/>.</summary>
    public MpiRunOptions Mpi { get; init; } = MpiRunOptions.Default;
}

/// <summary>
/// The largest generation a pipeline accepts: images per prompt, steps and the side of an image. The library's
/// own bounds (<see cref="GenerationRequest"/>, the model's position table) always apply; these may only narrow them.
/// </summary>
public sealed record GenerationLimits
{
    public int MaxImages { get; init; } = GenerationRequest.MaxImagesPerPrompt;
    public int MaxSteps { get; init; } = GenerationRequest.MaxSteps;
    /// <summary>Width and height in pixels; the default leaves the model's own limit (<see cref="Preflight.MaxImageSize"/>).</summary>
    public int MaxImageSide { get; init; } = int.MaxValue;

    public static GenerationLimits Library { get; } = new();
}
