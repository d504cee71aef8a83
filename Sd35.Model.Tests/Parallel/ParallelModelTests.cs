using FluentAssertions;
using Sd35.Layers;
using Sd35.Layers.Attention;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Numerics;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.Mesh;
using Sd35.Tests.Pipeline;
using Sd35.Tests.TestSupport;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tests.Parallel;

/// <summary>
/// The parallel models of one named config against the same models on one device (fp32 CPU): attention,
/// feed-forward, joint blocks and the whole transformer; CLIP, T5 and the VAE decoder against their goldens, on
/// exactly the devices the reference places them on (the only copy of these tensor-parallel checks); and the whole
/// pipeline with classifier-free and skip-layer guidance. Each config is a derived class named by its id (see
/// PerConfigTests.cs), so <c>dotnet test --filter &lt;id&gt;</c> selects exactly that config's tests. Every
/// participating device's result is checked, and the set of participants is asserted.
/// </summary>
[Collection(MeshRunCollection.Name)]
public abstract class ParallelModelTests(string id)
{
    const double Fp32Pcc = 0.99999, Fp32AbsRel = 1e-4;
    // bf16 against fp32 on one device, gated as the reference system gates its bf16 transformer (PCC 0.998). Measured
    // on the tiny transformer: PCC ≥ 0.99996 and max |error| ≤ 0.0097 × max |reference| (n150, qb_cfg1_sp1_tp4, t3k_cfg2_sp2_tp2).
    const double Bf16Pcc = 0.998, Bf16AbsRel = 0.02;

    protected ParallelConfig Config { get; } = ParallelConfig.Parse(id);
    static string Reference(params string[] parts) => RepoPaths.Fixtures(["reference", .. parts]);
    static string TinyTransformer => Reference("transformer", "tiny");

    /// <summary>Every device of the mesh ran and returned a result, and each one matches.</summary>
    void CheckEveryRank(Tensor expected, IReadOnlyList<Tensor?> actual, string what, double pcc = Fp32Pcc, double absRel = Fp32AbsRel) =>
        CheckParticipants(expected, actual, Enumerable.Range(0, Config.DeviceCount).ToArray(), what, pcc, absRel);

    /// <summary>
    /// Exactly the devices <paramref name="participants"/> returned a result (the others sat the stage out), and
    /// every participant's result matches.
    /// </summary>
    void CheckParticipants(Tensor expected, IReadOnlyList<Tensor?> actual, IReadOnlyList<int> participants, string what, double pcc = Fp32Pcc, double absRel = Fp32AbsRel)
    {
        actual.Select((t, device) => (t, device)).Where(p => p.t is not null).Select(p => p.device)
            .Should().Equal(participants, $"{_id}: {what} must run on exactly these devices");
        foreach (var device in participants)
            AssertQuality.Close(expected, actual[device]!, pcc, absRel, $"{_id}: {what} on device {device}");
    }

    /// <summary>
    /// The reference system's placement of the text encoders and the VAE, written out per config (device ids,
    /// row-major): the encoders on cfg submesh 0 reshaped into a row of at most four devices (a larger submesh
    /// uses each of its rows); the VAE on cfg submesh 1 when the submesh is four wide (no reshape needed), else
    /// on submesh 0 with the encoders.
    /// </summary>
    static readonly Dictionary<string, (int[] Encoders, int[] Vae)> StageDevices = new()
    {
        ["n150_cfg1_sp1_tp1"] = ([0], [0]),
        ["n300_cfg1_sp1_tp2"] = ([0, 1], [0, 1]),
        ["n300_cfg1_sp2_tp1"] = ([0, 1], [0, 1]),
        ["qb_cfg1_sp1_tp4"] = ([0, 1, 2, 3], [0, 1, 2, 3]),
        ["qb_cfg1_sp2_tp2"] = ([0, 1, 2, 3], [0, 1, 2, 3]),
        ["t3k_cfg1_sp2_tp4"] = ([0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3, 4, 5, 6, 7]),
        ["t3k_cfg2_sp2_tp2"] = ([0, 1, 4, 5], [0, 1, 4, 5]),   // 2×2 submeshes: reshaped to 1×4, so the VAE shares submesh 0
        ["t3k_cfg2_sp1_tp4"] = ([0, 1, 2, 3], [4, 5, 6, 7]),   // 1×4 submeshes (rows): VAE on submesh 1
        ["tg_cfg2_sp4_tp4"] = (Columns(0, 4), Columns(4, 8)),  // 4×4 submeshes of the 4×8 mesh, each row a tp group of 4
    };

    static int[] Columns(int from, int to) => Enumerable.Range(0, 4).SelectMany(row => Enumerable.Range(from, to - from).Select(col => row * 8 + col)).ToArray();

    /// <summary>The tp width the encoders and the VAE run with: a row of at most four devices of a cfg submesh.</summary>
    int StageTensorParallel => Math.Min(4, Config.Submesh.Size);

    readonly string _id = id;

    /// <summary>Saves a freshly randomised module so every rank can load its shards by name, as from a real checkpoint.</summary>
    static string SaveRandom(nn.Module module, TempDirectory dir, long seed)
    {
        RandomWeights.Fill(module, seed);
        var path = dir.File("weights.safetensors");
        SafetensorsWriter.Write(path, module.state_dict());
        return path;
    }

    static T LoadOn<T>(T module, string path, string prefix = "") where T : nn.Module
    {
        using var checkpoint = Checkpoint.Open(path);
        CheckpointLoader.Load(module, checkpoint, new LoadOptions { KeyPrefix = prefix });
        return module;
    }

    [Fact]
    public void Attention_with_padded_heads_matches_one_device()
    {
        // tp + 1 heads never divide by tp > 1, so the zero-padded heads are always exercised.
        int tp = Config.Tp.Factor, heads = tp + 1, headDim = 16;
        long dim = heads * headDim;
        using var dir = new TempDirectory();
        var path = SaveRandom(new JointAttention(dim, heads, headDim, RankContext.Single(), hasPrompt: true, contextPreOnly: false, qkNorm: true), dir, seed: 11);
        manual_seed(5);
        var x = randn(2, 64, dim);
        var context = randn(2, 12, dim);
        var reference = LoadOn(new JointAttention(dim, heads, headDim, RankContext.Single(), true, false, true), path).Forward(x, context);

        var results = MeshRunner.Run(Config, (_, placed) =>
        {
            var rank = placed.Context;
            using var attention = LoadOn(new JointAttention(dim, heads, headDim, rank, true, false, true), path);
            var (image, prompt) = attention.Forward(MeshLayout.Shard(x, rank.Sp, 1), context);
            return (Image: MeshLayout.GatherImage(image, rank), Prompt: rank.Tp.AllGather(prompt!, -1));
        });
        CheckEveryRank(reference.Image, results.Select(r => r.Image).ToArray(), "attention image output");
        CheckEveryRank(reference.Prompt!, results.Select(r => r.Prompt).ToArray(), "attention prompt output");
    }

    [Fact]
    public void Feed_forward_matches_one_device()
    {
        long dim = 64;
        using var dir = new TempDirectory();
        var path = SaveRandom(new FeedForward(dim, SingleProcessGroup.Instance), dir, seed: 12);
        manual_seed(6);
        var x = randn(2, 64, dim);
        var reference = LoadOn(new FeedForward(dim, SingleProcessGroup.Instance), path).forward(x);

        var results = MeshRunner.Run(Config, (_, placed) =>
        {
            var rank = placed.Context;
            using var ff = LoadOn(new FeedForward(dim, rank.Tp), path);
            using var local = ff.forward(MeshLayout.Shard(x, rank.Sp, 1));
            return MeshLayout.GatherImage(local, rank);
        });
        CheckEveryRank(reference, results, "feed-forward");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)] // the last block: context-pre-only
    public void Joint_block_matches_one_device(int index)
    {
        var config = ModelConfig.Read<SD3TransformerConfig>(Path.Combine(TinyTransformer, "config.json"));
        var weights = Path.Combine(TinyTransformer, "diffusion_pytorch_model.safetensors");
        var prefix = $"transformer_blocks.{index}.";
        manual_seed(7);
        var image = randn(2, 64, config.InnerDim);
        var prompt = randn(2, 12, config.InnerDim);
        var temb = randn(2, config.InnerDim);
        var reference = LoadOn(new JointTransformerBlock(config, index, RankContext.Single()), weights, prefix).Forward(image, prompt, temb);

        var results = MeshRunner.Run(Config, (_, placed) =>
        {
            var rank = placed.Context;
            using var block = LoadOn(new JointTransformerBlock(config, index, rank), weights, prefix);
            var (p, i) = block.Forward(MeshLayout.ImageShard(image, rank), MeshLayout.Shard(prompt, rank.Tp, -1), temb);
            Tensor? gatheredPrompt = p is { } promptStream ? rank.Tp.AllGather(promptStream, -1) : null;
            return (Image: MeshLayout.GatherImage(i, rank), Prompt: gatheredPrompt);
        });
        CheckEveryRank(reference.Image, results.Select(r => r.Image).ToArray(), $"block {index} image stream");
        if (reference.Prompt is not null) CheckEveryRank(reference.Prompt, results.Select(r => r.Prompt).ToArray(), $"block {index} prompt stream");
        else results.Should().OnlyContain(r => ReferenceEquals(r.Prompt, null));
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void Transformer_matches_one_device(ScalarType dtype)
    {
        var io = Golden.ReadAll(Path.Combine(TinyTransformer, "io.safetensors"));
        var reference = SD3Transformer2DModel.FromFolder(new ModelFolder(TinyTransformer))
            .Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]);

        var results = MeshRunner.Run(Config, (_, placed) =>
        {
            using var model = SD3Transformer2DModel.FromFolder(new ModelFolder(TinyTransformer), placed.Context, dtype);
            return model.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]).to(float32);
        });
        if (dtype == ScalarType.Float32) CheckEveryRank(reference, results, "transformer fp32");
        else CheckEveryRank(reference, results, "transformer bf16", Bf16Pcc, Bf16AbsRel);
    }

    [Fact]
    public void Mmdit_x_transformer_with_dual_attention_matches_one_device()
    {
        // SD3.5 Medium's MMDiT-X blocks add an image-only attention: on a mesh it is the same ring with no prompt.
        var config = ModelConfig.Read<SD3TransformerConfig>(Path.Combine(TinyTransformer, "config.json")) with { DualAttentionLayers = [0, 1] };
        var io = Golden.ReadAll(Path.Combine(TinyTransformer, "io.safetensors"));
        using var dir = new TempDirectory();
        var path = SaveRandom(new SD3Transformer2DModel(config), dir, seed: 13);
        Tensor Run(SD3Transformer2DModel model) =>
            model.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]);
        var reference = Run(LoadOn(new SD3Transformer2DModel(config), path));

        var results = MeshRunner.Run(Config, (_, placed) =>
        {
            using var model = LoadOn(new SD3Transformer2DModel(config, placed.Context), path);
            return Run(model);
        });
        CheckEveryRank(reference, results, "MMDiT-X transformer");
    }

    [Fact]
    public void Clip_encoders_match_the_golden_on_their_devices()
    {
        foreach (var name in new[] { "clip_l_tiny", "clip_g_tiny" })
        {
            var folder = Reference("text_encoder", name);
            var io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
            var results = RunOnStageGroups(EncoderPlacement.TextEncoderGroup, tp =>
            {
                using var model = ClipTextModel.FromFolder(new ModelFolder(folder), RankContext.TensorParallel(tp));
                model.text_model.encoder.layers[0].mlp.fc1.LocalOutFeatures.Should().Be(model.Config.IntermediateSize / tp.Size);
                using var output = model.forward(io["input_ids"]);
                return new[] { output.HiddenState(-2).clone(), output.TextEmbeds!.clone() };
            });
            CheckParticipants(io["hidden_states.2"], results.Select(r => r?[0]).ToArray(), StageDevices[_id].Encoders, $"{name} penultimate hidden state");
            CheckParticipants(io["text_embeds"], results.Select(r => r?[1]).ToArray(), StageDevices[_id].Encoders, $"{name} text_embeds");
        }
    }

    [Fact]
    public void T5_encoder_matches_the_golden_on_its_devices()
    {
        var folder = Reference("text_encoder", "t5_tiny");
        var io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
        var results = RunOnStageGroups(EncoderPlacement.TextEncoderGroup, tp =>
        {
            using var model = T5EncoderModel.FromFolder(new ModelFolder(folder), RankContext.TensorParallel(tp));
            var table = model.encoder.block[0].SelfAttentionLayer.SelfAttention.relative_attention_bias!;
            table.weight.shape.Should().Equal(model.Config.RelativeAttentionNumBuckets, model.Config.NumHeads / tp.Size);
            return model.forward(io["input_ids"]);
        });
        CheckParticipants(io["last_hidden_state"], results, StageDevices[_id].Encoders, "T5 last_hidden_state");
    }

    [Fact]
    public void Vae_decoder_matches_the_golden_on_its_devices()
    {
        var folder = new ModelFolder(Reference("vae", "vae_tiny"));
        var io = Golden.ReadAll(Path.Combine(folder.Directory, "io.safetensors"));
        var results = RunOnStageGroups(EncoderPlacement.VaeGroup, tp =>
        {
            using var vae = AutoencoderKLDecoder.FromFolder(folder, RankContext.TensorParallel(tp));
            return vae.DecodeRaw(io["latents"]);
        });
        CheckParticipants(io["sample"], results, StageDevices[_id].Vae, "VAE decode");
    }

    [Fact]
    public void Pipeline_with_guidance_and_skip_layers_matches_one_device()
    {
        // The whole per-device program, on this config against the 1×1 config: encode (tp on a cfg submesh), three
        // denoising steps with classifier-free guidance (cfg exchange, sp ring, tp) and skip-layer guidance on steps
        // 1 and 2 (diffusers applies it where start·n < i < stop·n), decode (channel tp). On n150_cfg1_sp1_tp1 both
        // runs are the same program, so there it checks only that the run is deterministic.
        var (components, request) = PipelineGoldenTests.Load(Path.Combine("reference", "pipeline", "case1"));
        request = request with { Steps = 3, SkipLayerGuidance = new SkipLayerGuidance([1], Start: 0, Stop: 1) };
        var io = Golden.ReadAll(RepoPaths.Fixtures("reference", "pipeline", "case1", "io.safetensors"));

        (List<Tensor> Steps, Tensor Image) Run(ParallelConfig parallel, GenerationRequest r)
        {
            var pipeline = new StableDiffusion3Pipeline(components, options: new PipelineOptions { Parallel = parallel });
            var steps = new List<Tensor>();
            pipeline.OnStep = (_, l) => steps.Add(l.clone());
            using var result = pipeline.Generate(r, initialLatents: io["initial_latents"]);
            result.IsLead.Should().BeTrue("the in-process launcher hosts the lead device");
            return (steps, result.Image.clone());
        }

        var expected = Run(PipelineOptions.OneDevice, request);
        var withoutSkip = Run(PipelineOptions.OneDevice, request with { SkipLayerGuidance = null });
        Quality.Compare(expected.Steps[^1], withoutSkip.Steps[^1]).MaxAbsError.Should().BeGreaterThan(1e-3, "skip-layer guidance must take part in the run");

        var actual = Run(Config, request);
        actual.Steps.Should().HaveCount(request.Steps);
        for (int i = 0; i < request.Steps; i++)
            AssertQuality.Close(expected.Steps[i], actual.Steps[i], Fp32Pcc, Fp32AbsRel, $"{_id}: latents after step {i} (cfg + skip-layer guidance)");
        AssertQuality.Close(expected.Image, actual.Image, Fp32Pcc, Fp32AbsRel, $"{_id}: decoded image");
    }

    /// <summary>
    /// Runs <paramref name="program"/> on every device, handing the devices a placement assigns their tp group
    /// (which must be a row of at most four); the others return null.
    /// </summary>
    T?[] RunOnStageGroups<T>(Func<DeviceMesh, ParallelConfig, int, IReadOnlyList<int>?> placement, Func<IProcessGroup, T> program) where T : class =>
        MeshRunner.Run(DeviceMesh.Create(Config.Mesh), rank =>
        {
            var members = placement(rank.Mesh, Config, rank.Id);
            if (members is null) return null;
            members.Should().HaveCount(StageTensorParallel, $"{_id}: a stage's tp group is a row of at most four devices of a cfg submesh");
            return program(rank.Group("stage_tp", members));
        });
}
