using Sd35.Mesh;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Models.Clip;

/// <summary>
/// The stack of encoder layers. Returns every hidden state, as transformers does with
/// <c>output_hidden_states=True</c>: [0] is the input (the embeddings), [i] the output of layer i. SD3 reads the
/// penultimate one, so all of them are kept (a few hundred KiB per prompt even for CLIP-G).
/// </summary>
sealed class ClipEncoder : nn.Module<Tensor, IReadOnlyList<Tensor>>
{
    public readonly ModuleList<ClipEncoderLayer> layers;

    public ClipEncoder(ClipTextConfig config, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(ClipEncoder))
    {
        layers = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new ClipEncoderLayer(config, tp, dtype, device)).ToArray());
        RegisterComponents();
    }

    /// <summary>The caller owns every returned tensor, including [0], which is <paramref name="embeddings"/> itself.</summary>
    public override IReadOnlyList<Tensor> forward(Tensor embeddings)
    {
        var states = new List<Tensor>(layers.Count + 1) { embeddings };
        foreach (var layer in layers) states.Add(layer.forward(states[^1]));
        return states;
    }
}
