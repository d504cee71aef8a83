using Sd35.Layers.Embeddings;
using Sd35.Layers.Normalization;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using Sd35.Numerics;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Sd35.Layers;

namespace Sd35.Models.Transformer;

/// <summary>
/// The SD3 / SD3.5 MMDiT (diffusers <c>SD3Transformer2DModel</c>), the velocity predictor of the denoising loop:
/// patchify the latent with a position table, build the conditioning vector from timestep and pooled text, project
/// the prompt, run the joint blocks, then AdaLayerNormContinuous, a linear to patch pixels, and unpatchify. Module
/// names equal the checkpoint keys. Given a <see cref="MeshRank"/> it holds that rank's sp and tp shards.
/// </summary>
public sealed class SD3Transformer2DModel : nn.Module
{
    readonly MeshRank _rank;

    internal PatchEmbed pos_embed;
    internal CombinedTimestepTextProjEmbeddings time_text_embed;
    public ColumnParallelLinear context_embedder;
    public ModuleList<JointTransformerBlock> transformer_blocks;
    internal AdaLayerNormContinuous norm_out;
    public ColumnParallelLinear proj_out;

    public SD3TransformerConfig Config { get; }
    public ScalarType DType { get; }

    public SD3Transformer2DModel(SD3TransformerConfig config, MeshRank? rank = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(SD3Transformer2DModel))
    {
        config.Validate();
        Config = config;
        DType = ModelDTypes.Require(dtype, "SD3 transformer");
        _rank = rank ?? MeshRank.Single();
        var device = _rank.Device;
        long d = config.InnerDim;
        if (d % _rank.Tp.Size != 0) throw new ArgumentException($"hidden size {d} is not divisible by tp = {_rank.Tp.Size}");

        pos_embed = new PatchEmbed(config.InChannels, d, config.PatchSize, config.SampleSize, config.PosEmbedMaxSize, _rank.Tp, dtype, device);
        time_text_embed = new CombinedTimestepTextProjEmbeddings(d, config.PooledProjectionDim, dtype, device);
        context_embedder = new ColumnParallelLinear(config.JointAttentionDim, d, _rank.Tp, dtype: dtype, device: device);
        transformer_blocks = nn.ModuleList(Enumerable.Range(0, config.NumLayers)
            .Select(i => new JointTransformerBlock(config, i, _rank, dtype)).ToArray());
        // The output head runs on the gathered, fully replicated image stream, as in the reference system.
        norm_out = new AdaLayerNormContinuous(d, d, SingleProcessGroup.Instance, dtype, device);
        // Replicated, but storable like every other linear (held as blocks when a GGUF file or --quantize has them).
        proj_out = new ColumnParallelLinear(d, (long)config.PatchSize * config.PatchSize * config.OutChannels, SingleProcessGroup.Instance, dtype: dtype, device: device);
        RegisterComponents();
    }

    /// <summary>Builds the model described by a diffusers <c>transformer/</c> folder and loads its weights (strict).</summary>
    /// <param name="dtype">the compute dtype (and of every tensor but the storable weights)</param>
    /// <param name="storage">how the linears hold their weights (null: in <paramref name="dtype"/>)</param>
    public static SD3Transformer2DModel FromFolder(ModelFolder folder, MeshRank? rank = null, ScalarType dtype = ScalarType.Float32, WeightStorage? storage = null) =>
        folder.Load(() => new SD3Transformer2DModel(folder.ReadConfig<SD3TransformerConfig>(), rank, dtype), new LoadOptions { Storage = storage });

    /// <param name="latent">[B, C, H, W], replicated: each rank cuts out its own tokens</param>
    /// <param name="promptEmbeds">[B, L, joint_attention_dim] (diffusers' <c>encoder_hidden_states</c>)</param>
    /// <param name="pooledPromptEmbeds">[B, pooled_projection_dim] (diffusers' <c>pooled_projections</c>)</param>
    /// <param name="timestep">[B] on the 0..1000 scale</param>
    /// <param name="skipLayers">blocks bypassed entirely (SD3.5 skip-layer guidance)</param>
    /// <returns>the predicted velocity [B, out_channels, H, W], complete on every rank</returns>
    public Tensor Forward(Tensor latent, Tensor promptEmbeds, Tensor pooledPromptEmbeds, Tensor timestep, IReadOnlyCollection<int>? skipLayers = null)
    {
        using var timesteps = timestep.unsqueeze(0);
        using var conditioning = Condition(promptEmbeds, pooledPromptEmbeds, timesteps);
        return Forward(latent, conditioning, 0, skipLayers);
    }

    /// <summary>
    /// The latent-independent part of the forward for a whole schedule (see <see cref="TransformerConditioning"/>).
    /// </summary>
    /// <param name="promptEmbeds">[B, L, joint_attention_dim]</param>
    /// <param name="pooledPromptEmbeds">[B, pooled_projection_dim]</param>
    /// <param name="timesteps">[S, B]: each step's timestep per sample, on the 0..1000 scale</param>
    internal TransformerConditioning Condition(Tensor promptEmbeds, Tensor pooledPromptEmbeds, Tensor timesteps)
    {
        long batch = pooledPromptEmbeds.shape[0];
        if (timesteps.dim() != 2 || timesteps.shape[1] != batch)
            throw new ArgumentException($"timesteps must be [steps, {batch}], got [{string.Join(", ", timesteps.shape)}]");
        int steps = (int)timesteps.shape[0];
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var device = _rank.Device;
        var prompt = context_embedder.forward(promptEmbeds.to(DType, device));
        // Step-major rows: row s·B + b is sample b at step s, so one step's rows are a contiguous view.
        var pooled = pooledPromptEmbeds.to(DType, device).repeat(steps, 1);
        var temb = time_text_embed.Forward(timesteps.reshape(-1).to(device), pooled);
        var blocks = transformer_blocks.Select(block => block.Modulations(temb)).ToArray();
        var output = norm_out.Embed(temb);
        // temb is only the input of the modulations: the scope releases it.
        foreach (var owned in blocks.SelectMany(b => new[] { b.Image, b.Prompt }).Append(prompt).Append(output))
            owned.DetachFromDisposeScope();
        return new TransformerConditioning(prompt, blocks, output, steps, batch);
    }

    /// <summary>One step of a schedule: the forward of <paramref name="latent"/> with step <paramref name="step"/>'s conditioning.</summary>
    /// <param name="latent">[B, C, H, W], replicated: each rank cuts out its own tokens</param>
    /// <returns>the predicted velocity [B, out_channels, H, W], complete on every rank</returns>
    internal Tensor Forward(Tensor latent, TransformerConditioning conditioning, int step, IReadOnlyCollection<int>? skipLayers = null)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int p = Config.PatchSize;
        long height = latent.shape[2], width = latent.shape[3];
        if (height % p != 0 || width % p != 0)
            throw new ArgumentException($"latent size {height}×{width} is not a multiple of patch size {p}");
        if (latent.shape[0] != conditioning.Batch)
            throw new ArgumentException($"a batch of {latent.shape[0]} latents with conditioning for {conditioning.Batch}");
        long tokens = height / p * (width / p);
        var sp = _rank.Sp;
        if (tokens % sp.Size != 0) throw new ArgumentException($"{tokens} image tokens do not split evenly over sp = {sp.Size}");
        long local = tokens / sp.Size;

        var image = pos_embed.Forward(latent.to(_rank.Device), sp.Rank * local, local);
        var prompt = conditioning.Prompt;
        for (int i = 0; i < transformer_blocks.Count; i++)
        {
            if (skipLayers is not null && skipLayers.Contains(i)) continue;
            var (nextPrompt, nextImage) = transformer_blocks[i].Forward(image, prompt, conditioning.Block(i, step));
            image = nextImage;
            if (nextPrompt is not null) prompt = nextPrompt;
        }

        var full = _rank.Tp.AllGather(sp.AllGather(image, 1), -1);
        var patches = proj_out.forward(norm_out.Apply(full, conditioning.Output(step)));
        return Unpatchify(patches, height / p, width / p).MoveToOuterDisposeScope();
    }

    /// <summary>[B, h·w, p·p·C] → [B, C, h·p, w·p] (diffusers' einsum nhwpqc → nchpwq).</summary>
    Tensor Unpatchify(Tensor patches, long h, long w)
    {
        long p = Config.PatchSize, c = Config.OutChannels;
        return patches.reshape(patches.shape[0], h, w, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(patches.shape[0], c, h * p, w * p);
    }
}
