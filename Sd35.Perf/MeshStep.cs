using Sd35.Mesh;
using Sd35.Models.Transformer;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>
/// The collective pattern of one denoising step on a parallel config, as the pipeline runs it: each rank runs the
/// transformer for its guidance branch (its image tokens on sp, its features on tp), then the branches exchange
/// their predictions over the cfg group (an AllGather), which is what every device needs for the guided Euler step.
/// Weights are left as initialized: values change neither the bytes moved nor the time.
/// </summary>
public sealed class MeshStep : IDisposable
{
    readonly SD3Transformer2DModel _model;
    readonly MeshRank _placed;
    readonly Tensor _latent, _prompt, _pooled, _timestep;

    public MeshStep(SD3TransformerConfig config, MeshRank placed, int latentSize, int promptTokens)
    {
        _placed = placed;
        manual_seed(0);
        _model = new SD3Transformer2DModel(config, placed);
        // cfg = 1: one submesh runs both branches as a batch of 2; cfg = 2: each submesh its own branch.
        int batch = placed.Cfg.Size == 1 ? 2 : 1;
        _latent = randn(batch, config.InChannels, latentSize, latentSize);
        _prompt = randn(batch, promptTokens, config.JointAttentionDim);
        _pooled = randn(batch, config.PooledProjectionDim);
        _timestep = full([batch], 500f);
    }

    public void Run()
    {
        using var scope = NewDisposeScope();
        var velocity = _model.Forward(_latent, _prompt, _pooled, _timestep);
        _placed.Cfg.AllGather(velocity, 0);
    }

    /// <summary>SD3.5 Large's structure (38 heads, qk-norm, a context-pre-only last block) at a chosen head width and depth.</summary>
    public static SD3TransformerConfig Sd35LargeShaped(int headDim, int layers) => SD3TransformerConfig.SD35Large with
    {
        AttentionHeadDim = headDim,
        NumLayers = layers,
        CaptionProjectionDim = SD3TransformerConfig.SD35Large.NumAttentionHeads * headDim,
        PosEmbedMaxSize = 48, // the table is local to each rank (no traffic); SD3.5's 192 would only cost memory here
        SampleSize = 64,      // a default grid of 32 patches that fits the table (the config's rule); the runs pass their own latents
    };

    public void Dispose()
    {
        _model.Dispose();
        _latent.Dispose();
        _prompt.Dispose();
        _pooled.Dispose();
        _timestep.Dispose();
    }
}
