using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Layers.Embeddings;

/// <summary>
/// linear_1 → SiLU → linear_2: diffusers' <c>TimestepEmbedding</c> and <c>PixArtAlphaTextProjection</c>
/// (act "silu") share this shape and these checkpoint names.
/// </summary>
sealed class MlpEmbedding : nn.Module<Tensor, Tensor>
{
    public Linear linear_1;
    public Linear linear_2;

    public MlpEmbedding(long inFeatures, long outFeatures, ScalarType dtype = ScalarType.Float32, Device? device = null) : base(nameof(MlpEmbedding))
    {
        linear_1 = WeightInit.Linear(inFeatures, outFeatures, hasBias: true, dtype, device);
        linear_2 = WeightInit.Linear(outFeatures, outFeatures, hasBias: true, dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var hidden = Kernels.Linear(x, linear_1.weight, linear_1.bias);
        using var activated = nn.functional.silu(hidden);
        Kernels.RecordElementwise("silu", activated, 4, hidden);
        return Kernels.Linear(activated, linear_2.weight, linear_2.bias);
    }
}
