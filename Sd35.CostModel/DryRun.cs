using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.Pipeline;
using Sd35.Profiling;
using Sd35.Tokenizers;
using Sd35.Tools.Profiling;
using static TorchSharp.torch;
using Sd35.Tensors.Checkpoints;

namespace Sd35.CostModeling;

/// <summary>What one device recorded over the whole run: its ops and collectives, in order, each tagged with its section.</summary>
public sealed record DeviceRecord(int DeviceId, MeshCoord Coord, IReadOnlyList<OpEvent> Ops, IReadOnlyList<CollectiveEvent> Collectives);

/// <summary>The recorded work of every device for one image (encoding, <see cref="StepsRecorded"/> denoising steps, decoding).</summary>
public sealed record DryRunResult(ParallelConfig Config, string Workload, int StepsRecorded, IReadOnlyList<DeviceRecord> Devices);

/// <summary>
/// Runs the real pipeline — <see cref="StableDiffusion3Pipeline"/>, its per-device program (encode → denoise →
/// decode) on every rank of the mesh, the model code, the in-process collectives — with an <see cref="OpRecorder"/>
/// installed on every rank thread. On the <c>meta</c> device (shapes only) the models are built from their configs
/// and no weights are read, so SD3.5 Large at 1024² on 32 ranks takes seconds; on the CPU the same program computes
/// for real and records the same counts (a test checks this on the tiny reference pipeline).
/// </summary>
public static class DryRun
{
    /// <summary>A shape-only run of <paramref name="workload"/>: its configs written to a weightless model folder, every rank on meta.</summary>
    /// <param name="steps">denoising steps to walk; every step does the same work, so one is enough for a prediction</param>
    public static DryRunResult Run(ParallelConfig config, Workload workload, int steps = 1)
    {
        string root = ShapeOnlyModelFolder.Write(workload);
        try
        {
            ModelFolder Part(string name) => ShapeOnlyModelFolder.Folder(root, name);
            var components = new PipelineComponents(Part("transformer"), Part("vae"), Part("text_encoder"), Part("text_encoder_2"),
                workload.T5 is null ? null : Part("text_encoder_3"), () => TokenizerSet.Default(), FlowMatchEulerSchedulerConfig.Sd35,
                $"shape-only {workload.Describe()}");
            var request = new GenerationRequest
            {
                Prompt = "a photo of an astronaut riding a horse on the moon", Steps = steps, Width = workload.Width, Height = workload.Height,
                GuidanceScale = workload.Guided ? 3.5 : 1.0, MaxSequenceLength = workload.T5Tokens,
            };
            return Run(config, components, request, workload.DType, ComputeDevice.Meta, workload.Describe());
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Runs the pipeline on <paramref name="components"/> as given (real weights on the CPU, or configs only on meta) and records every rank.</summary>
    public static DryRunResult Run(ParallelConfig config, PipelineComponents components, GenerationRequest request, ScalarType dtype,
        ComputeDevice device, string description)
    {
        var mesh = DeviceMesh.Create(config.Mesh);
        var recorders = mesh.Ids.ToDictionary(id => id, id => new OpRecorder(id.Value));
        var options = new MeshRunOptions
        {
            CollectiveTimeout = TimeSpan.FromMinutes(10),
            // Shape-only ops cost microseconds; one intra-op thread each keeps 32 rank threads from oversubscribing.
            IntraOpThreads = device == ComputeDevice.Meta ? 1 : null,
        };
        var launcher = new RecordingLauncher(new InProcessLauncher(device, options), recorders);
        var pipeline = new StableDiffusion3Pipeline(components, dtype, new PipelineOptions { Parallel = config, Launcher = launcher });
        using (pipeline.Generate(request)) { }
        var devices = mesh.Ids.Select(id => new DeviceRecord(id.Value, mesh.CoordOf(id), recorders[id].Ops, recorders[id].Collectives)).ToArray();
        return new DryRunResult(config, description, request.Steps, devices);
    }

    /// <summary>Installs each rank's recorder on the rank's thread for the whole of its program.</summary>
    sealed class RecordingLauncher(IMeshLauncher inner, IReadOnlyDictionary<DeviceId, OpRecorder> recorders) : IMeshLauncher
    {
        public IMeshSession Open(MeshShape shape) => new Recording(inner.Open(shape), recorders);

        sealed class Recording(IMeshSession session, IReadOnlyDictionary<DeviceId, OpRecorder> recorders) : IMeshSession
        {
            public MeshShape Shape => session.Shape;

            public MeshRunResult<T> Run<T>(Func<MeshRank, T> program) =>
                session.Run(rank =>
                {
                    using var recording = recorders[rank.Id].Use();
                    return program(rank);
                });

            public void Dispose() => session.Dispose();
        }
    }
}
