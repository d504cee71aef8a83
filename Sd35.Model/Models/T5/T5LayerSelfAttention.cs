using Sd35.Layers.Normalization;
using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;
using Sd35.Layers;

namespace Sd35.Models.T5;

/// <summary>Sub-layer 0 of a T5 block: x + SelfAttention(layer_norm(x)).</summary>
sealed class T5LayerSelfAttention : nn.Module<Tensor, Tensor, Tensor>
{
    public readonly T5Attention SelfAttention;
    public readonly RmsNorm layer_norm;

    public T5LayerSelfAttention(T5Config config, bool hasRelativeAttentionBias, IProcessGroup tp, ScalarType dtype, Device? device)
        : base(nameof(T5LayerSelfAttention))
    {
        SelfAttention = new T5Attention(config, hasRelativeAttentionBias, tp, dtype, device);
        layer_norm = new RmsNorm(config.DModel, config.LayerNormEpsilon, dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor positionBias)
    {
        using var normed = layer_norm.forward(hidden);
        using var attended = SelfAttention.forward(normed, positionBias);
        var output = hidden + attended;
        Kernels.RecordElementwise("residual", output, 1, hidden, attended);
        return output;
    }
}
