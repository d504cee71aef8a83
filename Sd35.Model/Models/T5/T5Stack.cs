using Sd35.Layers.Normalization;
using Sd35.Mesh;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Models.T5;

/// <summary>
/// The encoder stack (<c>encoder.*</c>): the blocks and the final T5 LayerNorm. The relative position bias is
/// computed once from block 0's table and added in every block, as in T5. The token embedding lives in the
/// parent (<c>shared</c>), so this module takes embeddings, not ids.
/// </summary>
sealed class T5Stack : nn.Module<Tensor, Tensor>
{
    public readonly ModuleList<T5Block> block;
    public readonly RmsNorm final_layer_norm;

    public T5Stack(T5Config config, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(T5Stack))
    {
        block = nn.ModuleList(Enumerable.Range(0, config.NumLayers).Select(i => new T5Block(config, i == 0, tp, dtype, device)).ToArray());
        final_layer_norm = new RmsNorm(config.DModel, config.LayerNormEpsilon, dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor embeddings)
    {
        using var scope = NewDisposeScope();
        long tokens = embeddings.shape[1];
        var table = block[0].SelfAttentionLayer.SelfAttention.relative_attention_bias!;
        var positionBias = table.Compute(tokens, tokens);
        var hidden = embeddings;
        foreach (var b in block) hidden = b.forward(hidden, positionBias);
        return final_layer_norm.forward(hidden).MoveToOuterDisposeScope();
    }
}
