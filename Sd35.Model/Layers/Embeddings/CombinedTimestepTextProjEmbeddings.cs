using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Layers.Embeddings;

/// <summary>
/// SD3's conditioning vector: an MLP of the 256-channel sinusoidal timestep projection plus an MLP of the
/// pooled text embedding (diffusers <c>CombinedTimestepTextProjEmbeddings</c>). Small, so every rank holds it whole.
/// </summary>
sealed class CombinedTimestepTextProjEmbeddings : nn.Module
{
    public const int TimestepChannels = 256;
    public MlpEmbedding timestep_embedder;
    public MlpEmbedding text_embedder;

    public CombinedTimestepTextProjEmbeddings(long dim, long pooledDim, ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base(nameof(CombinedTimestepTextProjEmbeddings))
    {
        timestep_embedder = new MlpEmbedding(TimestepChannels, dim, dtype, device);
        text_embedder = new MlpEmbedding(pooledDim, dim, dtype, device);
        RegisterComponents();
    }

    public Tensor Forward(Tensor timestep, Tensor pooled)
    {
        using var scope = NewDisposeScope();
        var projected = TimestepProjection(timestep, TimestepChannels).to(pooled.dtype);
        return (timestep_embedder.forward(projected) + text_embedder.forward(pooled)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// diffusers <c>get_timestep_embedding</c> with flip_sin_to_cos, shift 0, max period 10⁴: [cos, sin] of
    /// t·exp(−ln(10⁴)·i/half), computed in float32 as the reference does.
    /// </summary>
    public static Tensor TimestepProjection(Tensor timestep, int channels)
    {
        using var scope = NewDisposeScope();
        int half = channels / 2;
        var exponent = arange(0, half, float32, device: timestep.device) * (-Math.Log(10000.0)) / half;
        var angles = timestep.to(float32).view(-1, 1) * exponent.exp().view(1, -1);
        return cat([angles.cos(), angles.sin()], 1).MoveToOuterDisposeScope();
    }
}
