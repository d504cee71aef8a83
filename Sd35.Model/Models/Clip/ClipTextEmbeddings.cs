using Sd35.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.Clip;

/// <summary>
/// Token embedding plus learned absolute position embedding (positions 0…L−1). Replicated on every
/// tensor-parallel rank: the lookups are cheap and every rank needs the full hidden state.
/// </summary>
sealed class ClipTextEmbeddings : nn.Module<Tensor, Tensor>
{
    public readonly EmbeddingTable token_embedding;
    public readonly EmbeddingTable position_embedding;

    public ClipTextEmbeddings(ClipTextConfig config, ScalarType dtype, Device? device) : base(nameof(ClipTextEmbeddings))
    {
        token_embedding = new EmbeddingTable(config.VocabSize, config.HiddenSize, dtype, device);
        position_embedding = new EmbeddingTable(config.MaxPositionEmbeddings, config.HiddenSize, dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor inputIds)
    {
        long tokens = inputIds.shape[1];
        if (tokens > position_embedding.Entries)
            throw new ArgumentException($"{tokens} tokens exceed the model's {position_embedding.Entries} positions");
        using var scope = NewDisposeScope();
        var positions = arange(tokens, int64, inputIds.device).unsqueeze(0);
        return (token_embedding.forward(inputIds) + position_embedding.forward(positions)).MoveToOuterDisposeScope();
    }
}
