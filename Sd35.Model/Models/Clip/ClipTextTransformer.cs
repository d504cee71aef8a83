using Sd35.Mesh;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Sd35.Layers;

namespace Sd35.Models.Clip;

/// <summary>transformers' <c>CLIPTextTransformer</c> (the <c>text_model</c> of the checkpoint): embeddings, causal encoder, final LayerNorm, EOS pooling.</summary>
sealed class ClipTextTransformer : nn.Module<Tensor, ClipTextOutput>
{
    readonly int _eosTokenId;
    internal readonly ClipTextEmbeddings embeddings;
    internal readonly ClipEncoder encoder;
    public readonly LayerNorm final_layer_norm;

    public ClipTextTransformer(ClipTextConfig config, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(ClipTextTransformer))
    {
        _eosTokenId = config.EosTokenId;
        embeddings = new ClipTextEmbeddings(config, dtype, device);
        encoder = new ClipEncoder(config, tp, dtype, device);
        final_layer_norm = WeightInit.LayerNorm(config.HiddenSize, config.LayerNormEps, dtype, device);
        RegisterComponents();
    }

    public override ClipTextOutput forward(Tensor inputIds)
    {
        var hiddenStates = encoder.forward(embeddings.forward(inputIds));
        var last = Kernels.LayerNorm(hiddenStates[^1], final_layer_norm.eps, final_layer_norm.weight, final_layer_norm.bias);
        using var rows = arange(inputIds.shape[0], int64, inputIds.device);
        using var eos = EosPositions(inputIds, _eosTokenId);
        var pooled = last[TensorIndex.Tensor(rows), TensorIndex.Tensor(eos)];
        return new ClipTextOutput(hiddenStates, last, pooled);
    }

    /// <summary>
    /// Where each row's prompt ends, as transformers finds it: the FIRST token equal to <c>eos_token_id</c>
    /// (CLIP-L pads with EOS itself, so "the" EOS is the first one). Legacy configs with <c>eos_token_id</c> 2
    /// take the position of the largest id instead, which is the same place because EOS (49407) is the
    /// largest id of CLIP's vocabulary and argmax returns the first maximum.
    /// </summary>
    public static Tensor EosPositions(Tensor inputIds, int eosTokenId)
    {
        using var ids = inputIds.to(int32);
        if (eosTokenId == 2) return ids.argmax(-1);
        using var isEos = ids.eq(eosTokenId).to(int32);
        return isEos.argmax(-1);
    }
}
