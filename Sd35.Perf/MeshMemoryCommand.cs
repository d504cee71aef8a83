using Sd35.Mesh;
using Sd35.Pipeline;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Tensors.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>
/// <c>mesh-memory --model DIR [--parallel ID ...]</c>: the weight bytes each logical device of a parallel config
/// holds in each stage, computed by building every rank's models on the meta device with that rank's process
/// groups (exactly the shards it would load) and summing its parameter and buffer sizes. Nothing is read from
/// the checkpoint but the configs, so it runs in seconds for the full model. Activations are not counted.
/// </summary>
public static class MeshMemoryCommand
{
    static readonly Device Meta = new(DeviceType.META);

    public static int Run(string[] args)
    {
        string? model = null;
        var ids = new List<string>();
        var dtype = ScalarType.BFloat16;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"option {args[i]} needs a value");
            switch (args[i])
            {
                case "--model": model = Value(); break;
                case "--parallel": ids.Add(Value()); break;
                case "--fp32": dtype = ScalarType.Float32; break;
                default: throw new ArgumentException($"unknown option '{args[i]}' (mesh-memory --model DIR [--parallel ID ...] [--fp32])");
            }
        }
        if (model is null) throw new ArgumentException("mesh-memory needs --model DIR (a diffusers SD3.5 folder; only its configs are read)");
        if (ids.Count == 0) ids.AddRange(NamedParallelConfigs.All.Select(c => c.Id));
        Console.WriteLine($"weights per logical device ({dtype}, GiB): transformer / text encoders / VAE, the device's peak stage, and the mesh's total in the denoising stage");
        Console.WriteLine($"{"config",-20} {"devices",7} {"transformer",12} {"encoders",9} {"vae",6} {"device peak",12} {"mesh total (denoising)",23}");
        foreach (var id in ids) Report(model, ParallelConfig.Parse(id), id, dtype);
        Console.WriteLine($"{"one device",-20} {1,7} {Gib(TransformerBytes(model, RankContext.Single(Meta), dtype)),12:F2} {Gib(EncoderBytes(model, SingleProcessGroup.Instance, dtype)),9:F2} {Gib(VaeBytes(model, SingleProcessGroup.Instance, dtype)),6:F2}");
        return 0;
    }

    /// <summary>Per-device bytes of one config: (device id, transformer, encoders, vae).</summary>
    public static IReadOnlyList<(int Device, long Transformer, long Encoders, long Vae)> PerDevice(string model, ParallelConfig config, ScalarType dtype)
    {
        var mesh = DeviceMesh.Create(config.Mesh, _ => Meta);
        var rows = new List<(int, long, long, long)>();
        foreach (var device in mesh.Devices)
        {
            var placed = ParallelPlacement.Of(mesh, config, device.Id);
            var rank = new RankContext(Meta, Group(placed.SpMembers, device.Id), Group(placed.TpMembers, device.Id));
            long transformer = TransformerBytes(model, rank, dtype);
            var encoderGroup = EncoderPlacement.TextEncoderGroup(mesh, config, device.Id);
            var vaeGroup = EncoderPlacement.VaeGroup(mesh, config, device.Id);
            rows.Add((device.Id, transformer,
                encoderGroup is null ? 0 : EncoderBytes(model, Group(encoderGroup, device.Id), dtype),
                vaeGroup is null ? 0 : VaeBytes(model, Group(vaeGroup, device.Id), dtype)));
        }
        return rows;
    }

    static void Report(string model, ParallelConfig config, string id, ScalarType dtype)
    {
        var rows = PerDevice(model, config, dtype);
        foreach (var (device, transformer, encoders, vae) in rows)
            Console.WriteLine($"{(device == 0 ? id : ""),-20} {device,7} {Gib(transformer),12:F2} {Gib(encoders),9:F2} {Gib(vae),6:F2} {Gib(Math.Max(transformer, Math.Max(encoders, vae))),12:F2}" +
                (device == rows[^1].Device ? $" {Gib(rows.Sum(r => r.Transformer)),23:F2}" : ""));
    }

    static long TransformerBytes(string model, RankContext rank, ScalarType dtype)
    {
        var config = new ModelFolder(Path.Combine(model, "transformer")).ReadConfig<SD3TransformerConfig>();
        using var m = new SD3Transformer2DModel(config, rank, dtype);
        return Bytes(m);
    }

    static long EncoderBytes(string model, IProcessGroup tp, ScalarType dtype)
    {
        long total = 0;
        foreach (var part in new[] { "text_encoder", "text_encoder_2" })
        {
            using var clip = new ClipTextModel(new ModelFolder(Path.Combine(model, part)).ReadConfig<ClipTextConfig>(), RankContext.TensorParallel(tp, Meta), dtype);
            total += Bytes(clip);
        }
        using var t5 = new T5EncoderModel(new ModelFolder(Path.Combine(model, "text_encoder_3")).ReadConfig<T5Config>(), RankContext.TensorParallel(tp, Meta), dtype);
        return total + Bytes(t5);
    }

    static long VaeBytes(string model, IProcessGroup tp, ScalarType dtype)
    {
        var folder = new ModelFolder(Path.Combine(model, "vae"));
        using var vae = new AutoencoderKLDecoder(folder.ReadConfig<AutoencoderKLConfig>(), RankContext.TensorParallel(tp, Meta), dtype);
        return Bytes(vae);
    }

    static long Bytes(nn.Module module) => module.state_dict().Values.Sum(t => t.numel() * t.ElementSize);

    static IProcessGroup Group(IReadOnlyList<int> members, int deviceId) =>
        members.Count == 1 ? SingleProcessGroup.Instance : new ShapeOnlyGroup(members.ToList().IndexOf(deviceId), members.Count);

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
