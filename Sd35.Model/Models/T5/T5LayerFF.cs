using Sd35.Layers.Normalization;
using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;
using Sd35.Layers;

namespace Sd35.Models.T5;

/// <summary>Sub-layer 1 of a T5 block: x + DenseReluDense(layer_norm(x)) (the name is transformers', whatever the activation).</summary>
sealed class T5LayerFF : nn.Module<Tensor, Tensor>
{
    public readonly T5DenseGatedActDense DenseReluDense;
    public readonly RmsNorm layer_norm;

    public T5LayerFF(T5Config config, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(T5LayerFF))
    {
        DenseReluDense = new T5DenseGatedActDense(config, tp, dtype, device);
        layer_norm = new RmsNorm(config.DModel, config.LayerNormEpsilon, dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var normed = layer_norm.forward(hidden);
        using var transformed = DenseReluDense.forward(normed);
        var output = hidden + transformed;
        Kernels.RecordElementwise("residual", output, 1, hidden, transformed);
        return output;
    }
}
