using Sd35.Mesh;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Sd35.Layers;

namespace Sd35.Models.Clip;

/// <summary>Pre-LayerNorm transformer layer: x + attn(LN1(x)), then x + MLP(LN2(x)).</summary>
sealed class ClipEncoderLayer : nn.Module<Tensor, Tensor>
{
    public readonly ClipAttention self_attn;
    public readonly LayerNorm layer_norm1;
    public readonly ClipMlp mlp;
    public readonly LayerNorm layer_norm2;

    public ClipEncoderLayer(ClipTextConfig config, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(ClipEncoderLayer))
    {
        self_attn = new ClipAttention(config, tp, dtype, device);
        layer_norm1 = WeightInit.LayerNorm(config.HiddenSize, config.LayerNormEps, dtype, device);
        mlp = new ClipMlp(config, tp, dtype, device);
        layer_norm2 = WeightInit.LayerNorm(config.HiddenSize, config.LayerNormEps, dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var afterAttention = hidden + self_attn.forward(Norm(layer_norm1, hidden));
        Kernels.RecordElementwise("residual", afterAttention, 1, hidden, hidden);
        var output = afterAttention + mlp.forward(Norm(layer_norm2, afterAttention));
        Kernels.RecordElementwise("residual", output, 1, afterAttention, afterAttention);
        return output.MoveToOuterDisposeScope();
    }

    static Tensor Norm(LayerNorm norm, Tensor x) => Kernels.LayerNorm(x, norm.eps, norm.weight, norm.bias);
}
