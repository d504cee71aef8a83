using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Layers.Embeddings;

/// <summary>
/// linear_1 → SiLU → linear_2: diffusers' <c>TimestepEmbedding</c> and <c>PixArtAlphaTextProjection</c>
/// (act "silu") share this shape and these checkpoint names. Replicated; the linears are storable (GGUF files hold
/// them as blocks).
/// </summary>
sealed class MlpEmbedding : nn.Module<Tensor, Tensor>
{
    public ColumnParallelLinear linear_1;
    public ColumnParallelLinear linear_2;

    public MlpEmbedding(long inFeatures, long outFeatures, ScalarType dtype = ScalarType.Float32, Device? device = null) : base(nameof(MlpEmbedding))
    {
        linear_1 = new ColumnParallelLinear(inFeatures, outFeatures, SingleProcessGroup.Instance, dtype: dtype, device: device);
        linear_2 = new ColumnParallelLinear(outFeatures, outFeatures, SingleProcessGroup.Instance, dtype: dtype, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var hidden = linear_1.forward(x);
        using var activated = nn.functional.silu(hidden);
        Kernels.RecordElementwise("silu", activated, 4, hidden);
        return linear_2.forward(activated);
    }
}
