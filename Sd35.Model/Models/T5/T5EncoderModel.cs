using Sd35.Layers;
using Sd35.Mesh;
using Sd35.Numerics;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.T5;

/// <summary>
/// transformers' <c>T5EncoderModel</c>: SD3's T5-XXL text encoder (<c>text_encoder_3</c>). Parameter names are the
/// checkpoint keys (<c>shared.weight</c>, <c>encoder.block.0.layer.0.SelfAttention.q.weight</c>…). Attention and
/// feed-forward are tensor-parallel through the rank's tp group; the embedding and norms are replicated.
/// </summary>
public sealed class T5EncoderModel : nn.Module<Tensor, Tensor>
{
    internal readonly EmbeddingTable shared;
    internal readonly T5Stack encoder;

    public T5Config Config { get; }
    public ScalarType DType { get; }

    /// <param name="rank">the device and the tensor-parallel group (<see cref="MeshRank.ForStage"/>); one CPU device by default</param>
    public T5EncoderModel(T5Config config, MeshRank? rank = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(T5EncoderModel))
    {
        config.Validate();
        Config = config;
        DType = ModelDTypes.Require(dtype, "T5 encoder");
        rank ??= MeshRank.Single();
        shared = new EmbeddingTable(config.VocabSize, config.DModel, dtype, rank.Device);
        encoder = new T5Stack(config, rank.Tp, dtype, rank.Device);
        RegisterComponents();
    }

    /// <summary>
    /// The token embedding is one tensor tied under two names, <c>shared.weight</c> and
    /// <c>encoder.embed_tokens.weight</c>; checkpoints store either or both, and the model holds it once.
    /// </summary>
    public static LoadOptions LoadOptions { get; } = new()
    {
        Aliases = new Dictionary<string, string[]> { ["shared.weight"] = ["encoder.embed_tokens.weight"] },
    };

    /// <summary>Builds the model from a transformers folder (config.json + model.safetensors or shards) and loads its weights.</summary>
    /// <param name="storage">how the linears hold their weights (null: in <paramref name="dtype"/>, the compute dtype)</param>
    public static T5EncoderModel FromFolder(ModelFolder folder, MeshRank? rank = null, ScalarType dtype = ScalarType.Float32, WeightStorage? storage = null) =>
        folder.Load(() => new T5EncoderModel(folder.ReadConfig<T5Config>(), rank, dtype), LoadOptions with { Storage = storage });

    /// <param name="inputIds">(batch, tokens) int64 token ids; every token, padding included, is attended.</param>
    /// <returns><c>last_hidden_state</c>: (batch, tokens, d_model).</returns>
    public override Tensor forward(Tensor inputIds)
    {
        using var noGrad = no_grad();
        using var embeddings = shared.forward(inputIds);
        return encoder.forward(embeddings);
    }
}
