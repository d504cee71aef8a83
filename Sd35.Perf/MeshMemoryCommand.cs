using System.CommandLine;
using Sd35.Mesh;
using Sd35.Pipeline;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Profiling;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>
/// <c>mesh-memory --model DIR [--parallel ID ...] [--fp32]</c>: the weight bytes each logical device of a parallel config
/// holds in each stage. Every rank's models are built the pipeline's own way (<c>X.FromFolder</c> with that rank's
/// groups, as <see cref="MeshRank.Place"/> and <see cref="StagePlacement"/> place them) on the meta device, which
/// reads nothing but the configs, so the sizes are exactly the shards the rank would load, in seconds for the full
/// model. A folder without <c>text_encoder_3</c> counts the two CLIPs only, as the pipeline runs it. Activations are
/// not counted.
/// </summary>
public static class MeshMemoryCommand
{
    static readonly Device Meta = ShapeOnly.Device;

    public static Command Command()
    {
        var model = PerfOptions.ModelFolder("A diffusers SD3.5 folder; only its configs are read.");
        var parallel = new Option<string[]>("--parallel") { Description = "A parallel config id; repeat for several (default: every registered config).", HelpName = "id" };
        parallel.Validators.Add(r => PerfOptions.CheckConfigIds(r, r.Tokens));
        var fp32 = PerfOptions.Fp32();
        var command = new Command("mesh-memory", "Weight bytes per logical device of parallel configs, per stage (reads the model folder's configs only).") { model, parallel, fp32 };
        command.SetAction(r =>
        {
            var ids = r.GetValue(parallel) is { Length: > 0 } chosen ? chosen : NamedParallelConfigs.All.Select(c => c.Id).ToArray();
            Run(r.GetValue(model)!, ids, r.GetValue(fp32) ? ScalarType.Float32 : ScalarType.BFloat16);
        });
        return command;
    }

    public static void Run(string model, IReadOnlyList<string> ids, ScalarType dtype)
    {
        var configs = ids.Select(id => (Id: id, Config: ParallelConfig.Parse(id))).ToArray();
        var components = PipelineComponents.From(new ModelSource { Model = model });
        Console.WriteLine($"weights per logical device ({dtype}, GiB): transformer / text encoders / VAE, the device's peak stage, and the mesh's total in the denoising stage");
        Console.WriteLine($"{"config",-20} {"devices",7} {"transformer",12} {"encoders",9} {"vae",6} {"device peak",12} {"mesh total (denoising)",23}");
        foreach (var (id, config) in configs) Report(components, config, id, dtype);
        var alone = MeshRank.Single(Meta);
        Console.WriteLine($"{"one device",-20} {1,7} {Gib(TransformerBytes(components, alone, dtype)),12:F2} {Gib(EncoderBytes(components, alone, dtype)),9:F2} {Gib(VaeBytes(components, alone, dtype)),6:F2}");
    }

    /// <summary>Per-device bytes of one config: (device id, transformer, encoders, vae); 0 where the device holds no such model.</summary>
    public static IReadOnlyList<(DeviceId Device, long Transformer, long Encoders, long Vae)> PerDevice(PipelineComponents components, ParallelConfig config, ScalarType dtype)
    {
        var mesh = DeviceMesh.Create(config.Mesh, _ => Meta);
        var communicator = new ShapeOnlyCommunicator();
        var rows = new List<(DeviceId, long, long, long)>();
        foreach (var device in mesh.Devices)
        {
            var rank = new MeshRank(mesh, device.Id, communicator, CancellationToken.None).Place(config);
            var encoders = rank.ForStage(MeshGroups.TextEncoders);
            var vae = rank.ForStage(MeshGroups.Vae);
            rows.Add((device.Id, TransformerBytes(components, rank, dtype),
                encoders is null ? 0 : EncoderBytes(components, encoders, dtype),
                vae is null ? 0 : VaeBytes(components, vae, dtype)));
        }
        return rows;
    }

    static void Report(PipelineComponents components, ParallelConfig config, string id, ScalarType dtype)
    {
        var rows = PerDevice(components, config, dtype);
        foreach (var (device, transformer, encoders, vae) in rows)
            Console.WriteLine($"{(device == 0 ? id : ""),-20} {device,7} {Gib(transformer),12:F2} {Gib(encoders),9:F2} {Gib(vae),6:F2} {Gib(Math.Max(transformer, Math.Max(encoders, vae))),12:F2}" +
                (device == rows[^1].Device ? $" {Gib(rows.Sum(r => r.Transformer)),23:F2}" : ""));
    }

    static long TransformerBytes(PipelineComponents c, MeshRank rank, ScalarType dtype) =>
        Bytes(SD3Transformer2DModel.FromFolder(c.Transformer, rank, dtype));

    static long EncoderBytes(PipelineComponents c, MeshRank rank, ScalarType dtype) =>
        Bytes(ClipTextModel.FromFolder(c.TextEncoder, rank, dtype)) + Bytes(ClipTextModel.FromFolder(c.TextEncoder2, rank, dtype)) +
        (c.TextEncoder3 is { } t5 ? Bytes(T5EncoderModel.FromFolder(t5, rank, dtype)) : 0);

    static long VaeBytes(PipelineComponents c, MeshRank rank, ScalarType dtype) =>
        Bytes(AutoencoderKLDecoder.FromFolder(c.Vae, rank, dtype));

    /// <summary>The model's parameter and buffer bytes; the (shape-only) model is released.</summary>
    static long Bytes(nn.Module module)
    {
        using (module) return module.state_dict().Values.Sum(t => t.numel() * t.ElementSize);
    }

    /// <summary>Hands out shape-only groups: every rank of the mesh is placed as the pipeline places it, without a backend.</summary>
    sealed class ShapeOnlyCommunicator : ICommunicator
    {
        public IProcessGroup Group(string label, IReadOnlyList<DeviceId> members, DeviceId self) =>
            new ShapeOnlyGroup(members.ToList().IndexOf(self), members.Count);

        public CollectiveStats Traffic(DeviceId self, string label) => new();

        public IReadOnlyDictionary<string, CollectiveStats> TrafficOf(DeviceId self) => new Dictionary<string, CollectiveStats>();
    }

    static double Gib(long bytes) => bytes / (double)(1L << 30);

    /// <summary>A process group that only knows its rank and size: enough to build a rank's shards, never to run them.</summary>
    sealed class ShapeOnlyGroup(int rank, int size) : IProcessGroup
    {
        public int Rank => rank;
        public int Size => size;
        public Tensor AllGather(Tensor local, long dim) => throw NotRunnable();
        public Tensor ReduceScatter(Tensor local, long dim) => throw NotRunnable();
        public Tensor AllReduce(Tensor local) => throw NotRunnable();
        public Tensor AllToAll(Tensor local, long scatterDim, long gatherDim) => throw NotRunnable();
        public Tensor RingShift(Tensor local) => throw NotRunnable();
        public Tensor Broadcast(Tensor local, int root) => throw NotRunnable();
        public Tensor SendReceive(Tensor local, int toRank, int fromRank) => throw NotRunnable();
        public IPendingTensor StartSendReceive(Tensor local, int toRank, int fromRank) => throw NotRunnable();
        static NotSupportedException NotRunnable() => new("a shape-only group builds shards; it moves no data");
    }
}
