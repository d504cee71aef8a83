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
/// feed-forward, joint blocks, the whole transformer, CLIP, T5, the VAE decoder and a denoising step with
/// classifier-free guidance. Each config is a derived class named by its id (see PerConfigTests.cs), so
/// <c>dotnet test --filter &lt;id&gt;</c> selects exactly that config's tests. Every device's result is checked.
/// </summary>
[Collection(MeshRunCollection.Name)]
public abstract class ParallelModelTests(string id)
{
    const double Fp32Pcc = 0.99999, Fp32AbsRel = 1e-4;
    const double Bf16Pcc = 0.99;

    protected ParallelConfig Config { get; } = ParallelConfig.Parse(id);
    static string Reference(params string[] parts) => RepoPaths.Fixtures(["reference", .. parts]);
    static string TinyTransformer => Reference("transformer", "tiny");

    void CheckEveryRank(Tensor expected, IEnumerable<Tensor?> actual, string what, double pcc = Fp32Pcc, double absRel = Fp32AbsRel)
    {
        int checkedRanks = 0;
        foreach (var (tensor, rank) in actual.Select((t, r) => (t, r)))
        {
            if (tensor is null) continue;
            AssertQuality.Close(expected, tensor, pcc, absRel, $"{id}: {what} on device {rank}");
            checkedRanks++;
        }
        checkedRanks.Should().BeGreaterThan(0);
    }

    readonly string id = id;

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
        var path = SaveRandom(new JointAttention(dim, heads, headDim, RankContext.Single(), hasContext: true, contextPreOnly: false, qkNorm: true), dir, seed: 11);
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
        CheckEveryRank(reference.Image, results.Select(r => r.Image), "attention image output");
        CheckEveryRank(reference.Prompt!, results.Select(r => r.Prompt), "attention prompt output");
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
        var config = SD3TransformerConfig.FromJson(File.ReadAllText(Path.Combine(TinyTransformer, "config.json")));
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
        CheckEveryRank(reference.Image, results.Select(r => r.Image), $"block {index} image stream");
        if (reference.Prompt is not null) CheckEveryRank(reference.Prompt, results.Select(r => r.Prompt), $"block {index} prompt stream");
        else results.Should().OnlyContain(r => ReferenceEquals(r.Prompt, null));
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void Transformer_matches_one_device(ScalarType dtype)
    {
        var io = Golden.ReadAll(Path.Combine(TinyTransformer, "io.safetensors"));
        var reference = SD3Transformer2DModel.FromFolder(TinyTransformer)
            .Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]);

        var results = MeshRunner.Run(Config, (_, placed) =>
        {
            using var model = SD3Transformer2DModel.FromFolder(TinyTransformer, placed.Context, dtype);
            return model.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]).to(float32);
        });
        if (dtype == ScalarType.Float32) CheckEveryRank(reference, results, "transformer fp32");
        else CheckEveryRank(reference, results, "transformer bf16", Bf16Pcc, absRel: 0.1);
    }

    [Fact]
    public void Mmdit_x_transformer_with_dual_attention_matches_one_device()
    {
        // SD3.5 Medium's MMDiT-X blocks add an image-only attention: on a mesh it is the same ring with no prompt.
        var config = SD3TransformerConfig.FromJson(File.ReadAllText(Path.Combine(TinyTransformer, "config.json"))) with { DualAttentionLayers = [0, 1] };
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
    public void Clip_encoders_match_one_device()
    {
        foreach (var name in new[] { "clip_l_tiny", "clip_g_tiny" })
        {
            var folder = Reference("text_encoder", name);
            var ids = Golden.ReadAll(Path.Combine(folder, "io.safetensors"))["input_ids"];
            using var single = ClipTextModel.FromFolder(folder);
            using var expected = single.forward(ids);
            var results = RunOnEncoderGroups(EncoderPlacement.TextEncoderGroup, group =>
            {
                using var model = ClipTextModel.FromFolder(folder, tp: group);
                using var output = model.forward(ids);
                return new[] { output.HiddenState(-2).clone(), output.TextEmbeds!.clone() };
            });
            CheckEveryRank(expected.HiddenState(-2), results.Select(r => r?[0]), $"{name} penultimate hidden state");
            CheckEveryRank(expected.TextEmbeds!, results.Select(r => r?[1]), $"{name} text_embeds");
        }
    }

    [Fact]
    public void T5_encoder_matches_one_device()
    {
        var folder = Reference("text_encoder", "t5_tiny");
        var ids = Golden.ReadAll(Path.Combine(folder, "io.safetensors"))["input_ids"];
        CompareWithOneDevice(EncoderPlacement.TextEncoderGroup, "T5 last_hidden_state", tp =>
        {
            using var model = T5EncoderModel.FromFolder(folder, tp: tp);
            return model.forward(ids);
        });
    }

    [Fact]
    public void Vae_decoder_matches_one_device()
    {
        var folder = new ModelFolder(Reference("vae", "vae_tiny"));
        var latents = Golden.ReadAll(Path.Combine(folder.Directory, "io.safetensors"))["latents"];
        CompareWithOneDevice(EncoderPlacement.VaeGroup, "VAE decode", tp =>
        {
            using var vae = AutoencoderKLDecoder.Load(folder, tp: tp);
            return vae.DecodeRaw(latents);
        });
    }

    /// <summary>Runs <paramref name="stage"/> on one device, then on every device the placement assigns, and compares.</summary>
    void CompareWithOneDevice(Func<DeviceMesh, ParallelConfig, int, IReadOnlyList<int>?> placement, string what, Func<IProcessGroup, Tensor> stage)
    {
        var expected = stage(SingleProcessGroup.Instance);
        CheckEveryRank(expected, RunOnEncoderGroups(placement, stage), what);
    }

    [Fact]
    public void Pipeline_with_guidance_and_skip_layers_matches_one_device()
    {
        // Three steps with skip-layer guidance on steps 1 and 2 (diffusers applies it where start·n < i < stop·n):
        // the mesh encodes (tp on a cfg submesh), denoises (cfg exchange, sp ring, tp) and decodes (channel tp).
        var (components, request) = PipelineGoldenTests.Load(Path.Combine("reference", "pipeline", "case1"));
        request = request with { Steps = 3, SkipLayerGuidance = new SkipLayerGuidance([1], Start: 0, Stop: 1) };
        var io = Golden.ReadAll(RepoPaths.Fixtures("reference", "pipeline", "case1", "io.safetensors"));

        (List<Tensor> Steps, Tensor Image) Run(IPipelineBackend backend, GenerationRequest r)
        {
            var pipeline = new StableDiffusion3Pipeline(components, backend: backend);
            var steps = new List<Tensor>();
            pipeline.OnStep = (_, l) => steps.Add(l.clone());
            using var result = pipeline.Generate(r, initialLatents: io["initial_latents"]);
            return (steps, result.Image.clone());
        }

        var expected = Run(SingleDevice.Instance, request);
        var withoutSkip = Run(SingleDevice.Instance, request with { SkipLayerGuidance = null });
        Quality.Compare(expected.Steps[^1], withoutSkip.Steps[^1]).MaxAbsError.Should().BeGreaterThan(1e-3, "skip-layer guidance must take part in the run");

        var actual = Run(new MeshBackend(Config), request);
        for (int i = 0; i < request.Steps; i++)
            AssertQuality.Close(expected.Steps[i], actual.Steps[i], Fp32Pcc, Fp32AbsRel, $"{id}: latents after step {i} (cfg + skip-layer guidance)");
        AssertQuality.Close(expected.Image, actual.Image, Fp32Pcc, Fp32AbsRel, $"{id}: decoded image");
    }

    /// <summary>Runs <paramref name="program"/> on the devices the placement assigns, each with its tp group; others return null.</summary>
    T?[] RunOnEncoderGroups<T>(Func<DeviceMesh, ParallelConfig, int, IReadOnlyList<int>?> placement, Func<IProcessGroup, T> program) where T : class =>
        MeshRunner.Run(DeviceMesh.Create(Config.Mesh), rank =>
        {
            var members = placement(rank.Mesh, Config, rank.Id);
            return members is null ? null : program(rank.Group("encoder_tp", members));
        });
}
