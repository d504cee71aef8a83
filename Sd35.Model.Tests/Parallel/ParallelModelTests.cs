using FluentAssertions;
using Sd35.Layers;
using Sd35.Layers.Attention;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.Mesh;
using Sd35.Tests.Pipeline;
using Sd35.Tests.TestSupport;
using Sd35.Tools.Numerics;
using Sd35.Tools.Synthetic;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tests.Parallel;

/// <summary>
/// The parallel models of one named config against the same models on one device (fp32 CPU): attention,
/// feed-forward, joint blocks and the whole transformer; CLIP, T5 and the VAE decoder against their goldens, on
/// exactly the devices the reference places them on (the only copy of these tensor-parallel checks); and the whole
/// pipeline with classifier-free and skip-layer guidance. Each config is a derived class named by its id (see
/// PerConfigTests.cs), so <c>dotnet test --filter &lt;id&gt;</c> selects exactly that config's tests. Every
/// participating device's result is checked, and the set of participants is asserted. Mesh-against-one-device bars
/// come from the measured summation-order noise (below); the one-device side of the transformer and the pipeline is
/// also checked against diffusers' golden, so on n150_cfg1_sp1_tp1, where both sides are the same program, the tests
/// still check something that can fail.
/// </summary>
[Collection(MeshRunCollection.Name)]
public abstract class ParallelModelTests(string id)
{
    // A mesh against one device differs only in summation order (tp splits each GEMM's reduction, sp the attention's
    // softmax sums, cfg the batch), so its bars come from that noise, not from the golden bars. Measured 2026-12-06 on the
    // 2-core AMD EPYC VM (family 25 model 17, 23 GiB; libtorch default CPU kernels; four other agents sharing it), every config of PerConfigTests.cs, every device:
    // - fp32, one forward pass (attention, feed-forward, joint blocks, transformer, MMDiT-X): worst 1 − PCC 6.5e-14,
    //   worst max |error| 4.5e-7 × max |reference|; bar 1e-12 and 2e-6 (about 15× and 4.4× that);
    // - fp32, the whole pipeline (3 steps with cfg + skip-layer guidance, then the VAE), every step and image: worst
    //   1 − PCC 2.0e-12, worst max |error| 3.0e-6 × max |reference|; bar 1e-10 and 1.5e-5 (50× and 5×);
    // - bf16 against bf16 on one device (the transformer): worst 1 − PCC 1.18e-5, worst max |error| 7.3e-3 ×
    //   max |reference| (one bf16 ulp of the largest output, on every multi-device config); bar 5e-5 and 0.015 (4.3× and
    //   2×). A mesh-only bug as large as bf16's own error against fp32 (1 − PCC 3.4e-5, 1.0e-2) is near the bar; one
    //   fifty times that (1 − PCC 1.7e-3, which the reference's 0.998 gate passes) fails it 35-fold.
    // The PCC bars are looser multiples than the absolute ones because 1 − PCC at 1e-14 is near float64's resolution.
    // The golden bar (diffusers' outputs), for the stages compared with their goldens on their devices.
    const double GoldenFp32Pcc = 0.99999, GoldenFp32AbsRel = 1e-4;
    internal const double MeshFp32Pcc = 1 - 1e-12, MeshFp32AbsRel = 2e-6;
    internal const double MeshPipelineFp32Pcc = 1 - 1e-10, MeshPipelineFp32AbsRel = 1.5e-5;
    internal const double MeshBf16Pcc = 1 - 5e-5, MeshBf16AbsRel = 0.015;
    // bf16 against fp32 on one device, gated as the reference system gates its bf16 transformer (PCC 0.998). Measured
    // as above: 1 − PCC ≤ 3.45e-5 and max |error| ≤ 0.0101 × max |reference| on every config (n150 included).
    internal const double Bf16Pcc = 0.998, Bf16AbsRel = 0.02;

    protected ParallelConfig Config { get; } = ParallelConfig.Parse(id);
    static string Reference(params string[] parts) => RepoPaths.Fixtures(["reference", .. parts]);
    static string TinyTransformer => Reference("transformer", "tiny");

    /// <summary>
    /// Every device of the mesh ran and returned a result, and each one matches. On the 1×1 config the mesh path and
    /// the plain model are one program, so a bar would be true by construction: there the result must be the plain
    /// model's bit for bit (measured: it is), which fails if the mesh machinery changes anything on one device.
    /// </summary>
    void CheckEveryRank(Tensor expected, IReadOnlyList<Tensor?> actual, string what, double pcc = MeshFp32Pcc, double absRel = MeshFp32AbsRel,
        bool sameProgram = true)
    {
        CheckParticipants(expected, actual, Enumerable.Range(0, Config.DeviceCount).ToArray(), what, pcc, absRel);
        if (sameProgram && Config.DeviceCount == 1) actual[0]!.Equals(expected).Should().BeTrue($"{_id}: {what} on one device must be the plain model's, bit for bit");
    }

    /// <summary>
    /// Exactly the devices <paramref name="participants"/> returned a result (the others sat the stage out), and
    /// every participant's result matches.
    /// </summary>
    void CheckParticipants(Tensor expected, IReadOnlyList<Tensor?> actual, IReadOnlyList<int> participants, string what, double pcc = GoldenFp32Pcc, double absRel = GoldenFp32AbsRel)
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
        var path = SaveRandom(new JointAttention(dim, heads, headDim, MeshRank.Single(), hasPrompt: true, contextPreOnly: false, qkNorm: true), dir, seed: 11);
        manual_seed(5);
        var x = randn(2, 64, dim);
        var context = randn(2, 12, dim);
        var reference = LoadOn(new JointAttention(dim, heads, headDim, MeshRank.Single(), true, false, true), path).Forward(x, context);

        var results = MeshRunner.Run(Config, placed =>
        {
            var rank = placed;
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

        var results = MeshRunner.Run(Config, placed =>
        {
            var rank = placed;
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
        var reference = LoadOn(new JointTransformerBlock(config, index, MeshRank.Single()), weights, prefix).Forward(image, prompt, temb);

        var results = MeshRunner.Run(Config, placed =>
        {
            var rank = placed;
            using var block = LoadOn(new JointTransformerBlock(config, index, rank), weights, prefix);
            var (p, i) = block.Forward(MeshLayout.ImageShard(image, rank), MeshLayout.Shard(prompt, rank.Tp, -1), temb);
            Tensor? gatheredPrompt = p is { } promptStream ? rank.Tp.AllGather(promptStream, -1) : null;
            return (Image: MeshLayout.GatherImage(i, rank), Prompt: gatheredPrompt);
        });
        CheckEveryRank(reference.Image, results.Select(r => r.Image).ToArray(), $"block {index} image stream");
        if (reference.Prompt is not null) CheckEveryRank(reference.Prompt, results.Select(r => r.Prompt).ToArray(), $"block {index} prompt stream");
        else results.Should().OnlyContain(r => ReferenceEquals(r.Prompt, null));
    }

    [Fact]
    public void Transformer_matches_one_device()
    {
        var io = Golden.ReadAll(Path.Combine(TinyTransformer, "io.safetensors"));
        var reference = OneDeviceTransformer(io, ScalarType.Float32);
        // The one-device side is anchored to diffusers' output, so the comparison can fail on the 1×1 config too.
        AssertQuality.Fp32(io["sample"], reference, $"{_id}: one-device transformer against diffusers");
        CheckEveryRank(reference, MeshTransformer(io, ScalarType.Float32), "transformer fp32", MeshFp32Pcc, MeshFp32AbsRel);
    }

    [Fact]
    public void Transformer_in_bf16_matches_one_device_in_bf16()
    {
        // Mesh error only: both sides round to bf16, so what is left is the mesh's summation order (MeshBf16Pcc).
        var io = Golden.ReadAll(Path.Combine(TinyTransformer, "io.safetensors"));
        CheckEveryRank(OneDeviceTransformer(io, ScalarType.BFloat16), MeshTransformer(io, ScalarType.BFloat16), "transformer bf16 against bf16 on one device",
            MeshBf16Pcc, MeshBf16AbsRel);
    }

    [Fact]
    public void Transformer_in_bf16_passes_the_reference_bf16_gate_against_fp32()
    {
        var io = Golden.ReadAll(Path.Combine(TinyTransformer, "io.safetensors"));
        CheckEveryRank(OneDeviceTransformer(io, ScalarType.Float32), MeshTransformer(io, ScalarType.BFloat16), "transformer bf16 against fp32", Bf16Pcc, Bf16AbsRel,
            sameProgram: false);
    }

    static Tensor OneDeviceTransformer(Dictionary<string, Tensor> io, ScalarType dtype)
    {
        using var model = SD3Transformer2DModel.FromFolder(new ModelFolder(TinyTransformer), MeshRank.Single(), dtype);
        return model.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]).to(float32);
    }

    Tensor[] MeshTransformer(Dictionary<string, Tensor> io, ScalarType dtype) => MeshRunner.Run(Config, placed =>
    {
        using var model = SD3Transformer2DModel.FromFolder(new ModelFolder(TinyTransformer), placed, dtype);
        return model.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]).to(float32);
    });

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

        var results = MeshRunner.Run(Config, placed =>
        {
            using var model = LoadOn(new SD3Transformer2DModel(config, placed), path);
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
            var results = RunOnStageGroups(MeshGroups.TextEncoders, stage =>
            {
                using var model = ClipTextModel.FromFolder(new ModelFolder(folder), stage);
                model.text_model.encoder.layers[0].mlp.fc1.LocalOutFeatures.Should().Be(model.Config.IntermediateSize / stage.Tp.Size);
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
        var results = RunOnStageGroups(MeshGroups.TextEncoders, stage =>
        {
            using var model = T5EncoderModel.FromFolder(new ModelFolder(folder), stage);
            var table = model.encoder.block[0].SelfAttentionLayer.SelfAttention.relative_attention_bias!;
            table.weight.shape.Should().Equal(model.Config.RelativeAttentionNumBuckets, model.Config.NumHeads / stage.Tp.Size);
            return model.forward(io["input_ids"]);
        });
        CheckParticipants(io["last_hidden_state"], results, StageDevices[_id].Encoders, "T5 last_hidden_state");
    }

    [Fact]
    public void Vae_decoder_matches_the_golden_on_its_devices()
    {
        var folder = new ModelFolder(Reference("vae", "vae_tiny"));
        var io = Golden.ReadAll(Path.Combine(folder.Directory, "io.safetensors"));
        var results = RunOnStageGroups(MeshGroups.Vae, stage =>
        {
            using var vae = AutoencoderKLDecoder.FromFolder(folder, stage);
            return vae.DecodeRaw(io["latents"]);
        });
        CheckParticipants(io["sample"], results, StageDevices[_id].Vae, "VAE decode");
    }

    [Fact]
    public void Pipeline_with_guidance_and_skip_layers_matches_one_device()
    {
        // The whole per-device program, on this config against the 1×1 config: encode (tp on a cfg submesh), three
        // denoising steps with classifier-free guidance (cfg exchange, sp ring, tp) and skip-layer guidance on steps
        // 1 and 2 (diffusers applies it where start·n < i < stop·n), decode (channel tp). Every device's latents after
        // every step and every device's image are compared, not only the lead's. The 1×1 run without skip-layer
        // guidance is diffusers' case1, so the one-device side is anchored to the golden (on n150_cfg1_sp1_tp1 both
        // sides are otherwise the same program).
        var (components, request) = PipelineGoldenTests.Load(Path.Combine("reference", "pipeline", "case1"));
        var io = Golden.ReadAll(RepoPaths.Fixtures("reference", "pipeline", "case1", "io.safetensors"));
        request = request with { SkipLayerGuidance = new SkipLayerGuidance([1], Start: 0, Stop: 1) };
        request.Steps.Should().Be(3, "case1 is a three-step golden");

        var withoutSkip = DeviceRun.Generate(components, PipelineOptions.OneDevice, request with { SkipLayerGuidance = null }, io["initial_latents"]);
        for (int i = 0; i < request.Steps; i++)
            AssertQuality.Fp32(io[$"latents_after_step_{i}"], withoutSkip.LeadSteps[i], $"{_id}: one-device latents after step {i} against diffusers (case1)");
        AssertQuality.Fp32(io["image"], withoutSkip.Image, $"{_id}: one-device image against diffusers (case1)");

        var expected = DeviceRun.Generate(components, PipelineOptions.OneDevice, request, io["initial_latents"]);
        Quality.Compare(expected.LeadSteps[^1], withoutSkip.LeadSteps[^1]).MaxAbsError.Should().BeGreaterThan(1e-3, "skip-layer guidance must take part in the run");

        var actual = DeviceRun.Generate(components, Config, request, io["initial_latents"]);
        actual.LeadSteps.Should().HaveCount(request.Steps);
        for (int i = 0; i < request.Steps; i++)
            actual.LeadSteps[i].Equals(actual.Steps[(0, i)]).Should().BeTrue("the observer's StepEnded reports the lead device's latents");
        actual.CheckEveryDeviceAgainst(expected, Config.DeviceCount, MeshPipelineFp32Pcc, MeshPipelineFp32AbsRel, $"{_id} (cfg + skip-layer guidance)");
        if (Config.DeviceCount == 1)
            actual.Image.Equals(expected.Image).Should().BeTrue("on one device both runs are one program: bit for bit (measured: they are)");
    }

    /// <summary>
    /// Runs <paramref name="program"/> on every device, handing the devices that run <paramref name="stage"/> their view
    /// of it (its tp group must be a row of at most four); the others return null.
    /// </summary>
    T?[] RunOnStageGroups<T>(string stage, Func<MeshRank, T> program) where T : class =>
        MeshRunner.Run(Config, rank =>
        {
            var view = rank.ForStage(stage);
            if (view is null) return null;
            view.Tp.Size.Should().Be(StageTensorParallel, $"{_id}: a stage's tp group is a row of at most four devices of a cfg submesh");
            return program(view);
        });
}
