using Sd35.Mesh;
using Sd35.Numerics;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Sd35.Layers;
using Sd35.Layers.Parallel;

namespace Sd35.Models.Clip;

/// <summary>
/// transformers' <c>CLIPTextModelWithProjection</c>: SD3's CLIP-L and CLIP-G text encoders. Parameter names are
/// the checkpoint keys (<c>text_model.encoder.layers.0.self_attn.q_proj.weight</c>, <c>text_projection.weight</c>),
/// so a transformers checkpoint loads by name. Attention and MLP are tensor-parallel through the rank's tp group;
/// embeddings, LayerNorms and the projection are replicated.
/// </summary>
public sealed class ClipTextModel : nn.Module<Tensor, ClipTextOutput>
{
    internal readonly ClipTextTransformer text_model;
    public readonly ColumnParallelLinear text_projection;

    public ClipTextConfig Config { get; }
    public ScalarType DType { get; }

    /// <param name="rank">the device and the tensor-parallel group (<see cref="MeshRank.ForStage"/>); one CPU device by default</param>
    public ClipTextModel(ClipTextConfig config, MeshRank? rank = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(ClipTextModel))
    {
        config.Validate();
        Config = config;
        DType = ModelDTypes.Require(dtype, "CLIP text model");
        rank ??= MeshRank.Single();
        text_model = new ClipTextTransformer(config, rank.Tp, dtype, rank.Device);
        // Replicated, but storable like the encoder's linears.
        text_projection = new ColumnParallelLinear(config.HiddenSize, config.ProjectionDim, SingleProcessGroup.Instance, hasBias: false, dtype: dtype, device: rank.Device);
        RegisterComponents();
    }

    /// <summary>
    /// Checkpoints written by transformers before 4.31 also store the constant buffer
    /// <c>text_model.embeddings.position_ids</c> (0…76); it carries no weights, so it is skipped.
    /// </summary>
    public static LoadOptions LoadOptions { get; } = new() { IgnoreUnexpected = key => key == "text_model.embeddings.position_ids" };

    /// <summary>Builds the model from a transformers folder (config.json + model.safetensors or shards) and loads its weights.</summary>
    /// <param name="storage">how the linears hold their weights (null: in <paramref name="dtype"/>, the compute dtype)</param>
    public static ClipTextModel FromFolder(ModelFolder folder, MeshRank? rank = null, ScalarType dtype = ScalarType.Float32, WeightStorage? storage = null) =>
        folder.Load(() => new ClipTextModel(folder.ReadConfig<ClipTextConfig>(), rank, dtype), LoadOptions with { Storage = storage });

    /// <param name="inputIds">(batch, tokens) int64 token ids, at most <c>max_position_embeddings</c> tokens.</param>
    public override ClipTextOutput forward(Tensor inputIds)
    {
        using var noGrad = no_grad();
        var output = text_model.forward(inputIds);
        return output with { TextEmbeds = text_projection.forward(output.PooledOutput) };
    }
}
