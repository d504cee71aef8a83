using Sd35.Mesh;

namespace Sd35.Pipeline;

/// <summary>Where a pipeline runs: the parallel layout, the kind of device, and how its rank programs are started.</summary>
public sealed record PipelineOptions
{
    /// <summary>One device: the 1×1 config, run inline on the calling thread.</summary>
    public static ParallelConfig OneDevice { get; } = ParallelConfig.Parse("n150_cfg1_sp1_tp1");

    /// <summary>
    /// Real-size stages keep one submesh waiting while the other works (a skip-layer pass, a checkpoint read), so
    /// the pipeline's collectives wait far longer than a launcher's default before declaring a hang.
    /// </summary>
    public static MeshRunOptions MeshDefaults { get; } = new() { CollectiveTimeout = TimeSpan.FromMinutes(30) };

    public ParallelConfig Parallel { get; init; } = OneDevice;

    /// <summary>The devices the default in-process launcher binds ranks to; ignored when <see cref="Launcher"/> is given (it brings its own binding).</summary>
    public ComputeDevice Device { get; init; } = ComputeDevice.Cpu;

    /// <summary>
    /// The step trace ("traced" in the reference's terms): the first denoising step of each kind captures every rank's
    /// step program and later steps are checked against it (<see cref="Sd35.Mesh.Tracing.StepTrace"/>). Null: untraced.
    /// Keep one per pipeline: a capture made by the warm-up generation checks every later generation.
    /// </summary>
    public Sd35.Mesh.Tracing.StepTrace? Trace { get; init; }

    /// <summary>
    /// Whether each generation loads and releases every stage's models (<see cref="ModelResidency.Staged"/>, the lowest
    /// peak memory) or every device keeps its models between generations (<see cref="ModelResidency.Resident"/>; dispose
    /// the pipeline to release them).
    /// </summary>
    public ModelResidency Residency { get; init; } = ModelResidency.Staged;

    /// <summary>Starts the rank programs; null: every rank in this process (<see cref="MeshLaunchers.InProcess"/>).</summary>
    public IMeshLauncher? Launcher { get; init; }

    /// <summary>The launcher to use: made here, once, so a request for an unavailable device fails before any work.</summary>
    internal IMeshLauncher ResolveLauncher() => Launcher ?? MeshLaunchers.InProcess(Device, MeshDefaults);
}
