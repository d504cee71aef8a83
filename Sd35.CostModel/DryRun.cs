using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Pipeline;
using Sd35.Profiling;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.CostModeling;

/// <summary>What one device recorded over the whole run: its ops and collectives, in order, each tagged with its section.</summary>
public sealed record DeviceRecord(int DeviceId, MeshCoord Coord, IReadOnlyList<OpEvent> Ops, IReadOnlyList<CollectiveEvent> Collectives);

/// <summary>The recorded work of every device for one image (encoding, <see cref="StepsRecorded"/> denoising steps, decoding).</summary>
public sealed record DryRunResult(ParallelConfig Config, Workload Workload, int StepsRecorded, IReadOnlyList<DeviceRecord> Devices);

/// <summary>
/// Runs the real sharded pipeline — the mesh's rank programs, their collectives, the model code — with an
/// <see cref="OpRecorder"/> on every rank, on the <c>meta</c> device (shapes only: SD3.5 Large at 1024² on 32 ranks in
/// seconds, with no weights) or on the CPU (real arithmetic on uninitialised weights: the same counts, which a test
/// checks). The stages are placed as <see cref="MeshBackend"/> places them: the text encoders and the VAE tensor
/// parallel on a cfg submesh (<see cref="EncoderPlacement"/>), the denoising step on every device with the backend's
/// own guidance exchange and Euler step.
/// </summary>
public static class DryRun
{
    public static Device Meta { get; } = new("meta");

    public const string ClipSection = "clip_encoding";
    public const string T5Section = "t5_encoding";
    public const string StepSection = "denoising_step";
    public const string VaeSection = "vae";

    /// <param name="steps">denoising steps to walk; every step does the same work, so one is enough for a prediction</param>
    public static DryRunResult Run(ParallelConfig config, Workload workload, int steps = 1, Device? device = null)
    {
        device ??= Meta;
        config.ValidateFor(workload.ImageTokens, workload.Transformer.NumAttentionHeads, workload.Transformer.InnerDim);
        if (config.Cfg.Factor == 2 && !workload.Guided)
            throw new ArgumentException($"config {config.Id ?? config.ToString()} splits guidance over two submeshes, but the workload has no guidance");
        var mesh = DeviceMesh.Create(config.Mesh, _ => device);
        var options = new MeshRunOptions { CollectiveTimeout = TimeSpan.FromMinutes(10), IntraOpThreads = device.type == DeviceType.META ? 1 : null };
        var records = mesh.Ids.ToDictionary(id => id, id => new OpRecorder(id));

        var prompts = Stage(mesh, records, options, rank => Encode(rank, config, workload));
        var prompt = prompts.First(p => p is not null)!;
        var latents = Stage(mesh, records, options, rank => Denoise(rank, config, workload, prompt, steps));
        Stage(mesh, records, options, rank => Decode(rank, config, workload, latents.First(l => l is not null)!));

        var devices = mesh.Ids.Select(id => new DeviceRecord(id, mesh.CoordOf(id), records[id].Ops, records[id].Collectives)).ToArray();
        return new DryRunResult(config, workload, steps, devices);
    }

    /// <summary>Runs one stage on every rank with that rank's recorder installed on its thread.</summary>
    static T?[] Stage<T>(DeviceMesh mesh, Dictionary<int, OpRecorder> records, MeshRunOptions options, Func<MeshRank, T?> program) where T : class =>
        MeshRunner.Run(mesh, rank =>
        {
            using var recording = records[rank.Id].Use();
            using var scope = NewDisposeScope();
            var result = program(rank);
            return result is IDisposable ? (T?)(object?)Detach(result) : result;
        }, options);

    static object? Detach(object result)
    {
        switch (result)
        {
            case Tensor t: t.DetachFromDisposeScope(); break;
            case EncodedPrompt p:
                foreach (var t in new[] { p.Positive.PromptEmbeds, p.Positive.PooledPromptEmbeds, p.Negative?.PromptEmbeds, p.Negative?.PooledPromptEmbeds })
                    t?.DetachFromDisposeScope();
                break;
        }
        return result;
    }

    static EncodedPrompt? Encode(MeshRank rank, ParallelConfig config, Workload w)
    {
        var members = EncoderPlacement.TextEncoderGroup(rank.Mesh, config, rank.Id);
        if (members is null) return null;
        var tp = rank.Group("stage_tp", members);
        using var noGrad = no_grad();
        using var clipL = new ClipTextModel(w.ClipL, w.DType, tp, rank.Device);
        using var clipG = new ClipTextModel(w.ClipG, w.DType, tp, rank.Device);
        using var t5 = w.T5 is null ? null : new T5EncoderModel(w.T5, w.DType, tp, rank.Device);
        var encoder = new Sd3PromptEncoder(clipL, clipG, t5, w.Transformer.JointAttentionDim);
        PromptEmbeddings Side()
        {
            using var clipIds = zeros([1, Sd3PromptEncoder.ClipTokens], int64, rank.Device);
            using var t5Ids = w.T5 is null ? null : zeros([1, w.T5Tokens], int64, rank.Device);
            return encoder.EncodeIds(clipIds, clipIds, t5Ids);
        }
        var positive = Side();
        return new EncodedPrompt(positive, w.Guided ? Side() : null);
    }

    static Tensor Denoise(MeshRank rank, ParallelConfig config, Workload w, EncodedPrompt prompt, int steps)
    {
        var placed = rank.Place(config);
        using var model = new SD3Transformer2DModel(w.Transformer, placed.Context, w.DType);
        var scheduler = new FlowMatchEulerScheduler(new FlowMatchEulerSchedulerConfig(Shift: 3.0));
        scheduler.SetTimesteps(steps);
        var request = new GenerationRequest { Prompt = "", Steps = steps, Width = w.Width, Height = w.Height, GuidanceScale = w.Guided ? 3.5 : 1.0 };
        var latents = zeros([1, w.Transformer.InChannels, w.LatentHeight, w.LatentWidth], w.DType, rank.Device);
        var job = new DenoisingJob("", w.DType, prompt, latents, scheduler, request);
        using var branch = new MeshBackend.BranchInputs(job, placed, config.Cfg.Factor);
        for (int i = 0; i < steps; i++)
        {
            using var section = OpRecorder.InSection(StepSection);
            using var scope = NewDisposeScope();
            var velocity = MeshBackend.Velocity(model, branch, placed, latents, scheduler.Timesteps[i], null, request.GuidanceScale);
            var next = scheduler.Step(velocity, i, latents).MoveToOuterDisposeScope();
            latents.Dispose();
            latents = next;
        }
        return latents;
    }

    static Tensor? Decode(MeshRank rank, ParallelConfig config, Workload w, Tensor latents)
    {
        var members = EncoderPlacement.VaeGroup(rank.Mesh, config, rank.Id);
        if (members is null) return null;
        var tp = rank.Group("stage_tp", members);
        using var section = OpRecorder.InSection(VaeSection);
        using var vae = new AutoencoderKLDecoder(w.Vae, w.DType, rank.Device, tp);
        return vae.Decode(latents.to(rank.Device));
    }
}
