using Sd35.Mesh;
using Sd35.Numerics;
using Sd35.Tensors.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Models.Clip;

/// <summary>
/// transformers' <c>CLIPTextModelWithProjection</c>: SD3's CLIP-L and CLIP-G text encoders. Parameter names are
/// the checkpoint keys (<c>text_model.encoder.layers.0.self_attn.q_proj.weight</c>, <c>text_projection.weight</c>),
/// so a transformers checkpoint loads by name. Attention and MLP are tensor-parallel through <paramref name="tp"/>;
/// embeddings, LayerNorms and the projection are replicated.
/// </summary>
public sealed class ClipTextModel : nn.Module<Tensor, ClipTextOutput>
{
    public readonly ClipTextTransformer text_model;
    public readonly Linear text_projection;

    public ClipTextConfig Config { get; }
    public ScalarType DType { get; }

    public ClipTextModel(ClipTextConfig config, ScalarType dtype = ScalarType.Float32, IProcessGroup? tp = null, Device? device = null)
        : base(nameof(ClipTextModel))
    {
        config.Validate();
        Config = config;
        DType = ModelDTypes.Require(dtype, "CLIP text model");
        text_model = new ClipTextTransformer(config, tp ?? SingleProcessGroup.Instance, dtype, device);
        text_projection = nn.Linear(config.hidden_size, config.projection_dim, hasBias: false, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>
    /// Checkpoints written by transformers before 4.31 also store the constant buffer
    /// <c>text_model.embeddings.position_ids</c> (0…76); it carries no weights, so it is skipped.
    /// </summary>
    public static LoadOptions LoadOptions { get; } = new() { IgnoreUnexpected = key => key == "text_model.embeddings.position_ids" };

    /// <summary>Builds the model from a transformers folder (config.json + model.safetensors or shards) and loads its weights.</summary>
    public static ClipTextModel FromFolder(string directory, ScalarType dtype = ScalarType.Float32, IProcessGroup? tp = null, Device? device = null)
    {
        var folder = new ModelFolder(directory);
        return folder.Load(() => new ClipTextModel(ClipTextConfig.FromFolder(folder), dtype, tp, device), LoadOptions);
    }

    /// <param name="inputIds">(batch, tokens) int64 token ids, at most <c>max_position_embeddings</c> tokens.</param>
    public override ClipTextOutput forward(Tensor inputIds)
    {
        using var noGrad = no_grad();
        var output = text_model.forward(inputIds);
        return output with { TextEmbeds = text_projection.forward(output.PooledOutput) };
    }
}
