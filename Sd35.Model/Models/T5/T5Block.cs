using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.T5;

/// <summary>
/// One encoder block: self-attention sub-layer then feed-forward sub-layer, stored as the list
/// <c>layer.0</c> / <c>layer.1</c> as in the checkpoint. transformers clamps activations here only in float16,
/// which these models refuse, so there is no clamp.
/// </summary>
sealed class T5Block : nn.Module<Tensor, Tensor, Tensor>
{
    public readonly TorchSharp.Modules.ModuleList<nn.Module> layer;

    public T5Block(T5Config config, bool hasRelativeAttentionBias, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(T5Block))
    {
        layer = nn.ModuleList<nn.Module>(
            new T5LayerSelfAttention(config, hasRelativeAttentionBias, tp, dtype, device),
            new T5LayerFF(config, tp, dtype, device));
        RegisterComponents();
    }

    public T5LayerSelfAttention SelfAttentionLayer => (T5LayerSelfAttention)layer[0];
    public T5LayerFF FeedForwardLayer => (T5LayerFF)layer[1];

    public override Tensor forward(Tensor hidden, Tensor positionBias)
    {
        using var attended = SelfAttentionLayer.forward(hidden, positionBias);
        return FeedForwardLayer.forward(attended);
    }
}
