using Sd35.Mesh;
using Sd35.Mesh.Mpi;
using Sd35.Pipeline;

namespace Sd35.Hosting;

/// <summary>What building a pipeline did besides the pipeline: the process set-up's report and the model checks' time.</summary>
public sealed record PipelineSetupReport(string Runtime, double PreflightSeconds);

/// <summary>
/// The one way a program builds its pipeline from <see cref="PipelineSettings"/>: the process set-up, the
/// components, the model's checks (<see cref="Preflight.CheckModel"/>: a bad folder fails here, not at the first
/// generation), the launcher (every rank in this process, or one process per device when started by <c>mpirun</c>)
/// and the mesh. An unavailable device fails here too.
/// </summary>
public static class PipelineFactory
{
    public static StableDiffusion3Pipeline Create(PipelineSettings settings) => Create(settings, out _);

    public static StableDiffusion3Pipeline Create(PipelineSettings settings, out PipelineSetupReport report)
    {
        // 1. The process: libtorch, CPU runtime and NNPACK, before anything touches a tensor.
        var runtime = settings.Process.Apply();
        // 2. The components (configs read and checked; no weights yet).
        var components = PipelineComponents.From(settings.Source);
        return Create(settings, components, runtime, out report);
    }

    /// <summary>A pipeline over components made in memory (synthetic benchmarks, tests): <see cref="PipelineSettings.Source"/> is not read.</summary>
    public static StableDiffusion3Pipeline Create(PipelineSettings settings, PipelineComponents components)
        => Create(settings, components, settings.Process.Apply(), out _);

    static StableDiffusion3Pipeline Create(PipelineSettings settings, PipelineComponents components, string runtime, out PipelineSetupReport report)
    {
        // 3. The launcher: in a job of several processes, one rank per process and collectives over MPI (a wrong process
        //    count fails here, on every process); otherwise every rank in this process, `mpirun -np 1` included: both
        //    launchers set the intra-op threads by one rule (IntraOpThreads), so one device computes the same bits either way.
        var launcher = RanksInSeveralProcesses
            ? new MpiLauncher(settings.Device, settings.Mesh, settings.Mpi with { Config = settings.Parallel })
            : MeshLaunchers.InProcess(settings.Device, settings.Mesh);
        // 4. The dtypes: weights stored as the settings say, computed in the given dtype or the one this CPU runs faster.
        var precision = Precision(settings);
        // 5. Every checkpoint header against the model that will be built, on the meta device.
        double preflight = Preflight.CheckModel(components, precision.Compute);
        // 6. The pipeline on its mesh.
        var pipeline = new StableDiffusion3Pipeline(components, precision, new PipelineOptions
        {
            Parallel = settings.Parallel,
            Device = settings.Device,
            Residency = settings.Residency,
            Trace = settings.Trace,
            Launcher = launcher,
        });
        report = new PipelineSetupReport(runtime, preflight);
        return pipeline;
    }

    /// <summary>
    /// The settings' precision (<see cref="PipelinePrecision.Choose"/>). Without a compute dtype the CPU's measurement
    /// decides; on CUDA the layers compute in the weights' dtype (the measurement is of CPU kernels), and so they do
    /// where the ranks run in several processes, each of which would measure on its own, so ranks could disagree
    /// (a single process under <c>mpirun -np 1</c> measures, as it is the in-process run).
    /// </summary>
    public static PipelinePrecision Precision(PipelineSettings settings) =>
        PipelinePrecision.Choose(settings.WeightDType,
            settings.ComputeDType ?? (settings.Device == ComputeDevice.Cuda || RanksInSeveralProcesses ? settings.WeightDType : null), settings.Quantization);

    /// <summary>
    /// The one test of whether this process is one rank of a job of several (an MPI launcher started more than one
    /// process): it picks the launcher and keeps the compute dtype from being measured per process.
    /// </summary>
    static bool RanksInSeveralProcesses => MpiRuntime.IsLaunched;
}
