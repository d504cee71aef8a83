using Sd35.Layers;
using Sd35.Layers.Attention;
using Sd35.Layers.Normalization;
using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.Transformer;

/// <summary>
/// One MMDiT joint block (diffusers <c>JointTransformerBlock</c>): image and prompt streams, each modulated by
/// AdaLayerNormZero from the conditioning vector, attend jointly, then each runs its own gated MLP. The last
/// block is context-pre-only: the prompt only supplies keys and values (AdaLayerNormContinuous, no prompt MLP).
/// MMDiT-X blocks add a second, image-only attention.
/// On a mesh both streams carry D/tp features per rank and the image stream N/sp tokens; every place where a
/// layer needs the full features is an explicit AllGather on tp.
/// </summary>
public sealed class JointTransformerBlock : nn.Module
{
    readonly RankContext _rank;
    readonly long _dim;

    public AdaLayerNormZero norm1;
    public nn.Module norm1_context;
    public JointAttention attn;
    public JointAttention? attn2;
    public FeedForward ff;
    public FeedForward? ff_context;

    public bool ContextPreOnly { get; }

    public JointTransformerBlock(SD3TransformerConfig config, int index, RankContext rank, ScalarType dtype = ScalarType.Float32)
        : base(nameof(JointTransformerBlock))
    {
        _rank = rank;
        _dim = config.InnerDim;
        ContextPreOnly = index == config.NumLayers - 1;
        bool dual = config.DualAttentionLayers.Contains(index);
        var device = rank.Device;
        var tp = rank.Tp;

        norm1 = new AdaLayerNormZero(_dim, tp, dual ? 9 : 6, dtype, device);
        norm1_context = ContextPreOnly
            ? new AdaLayerNormContinuous(_dim, _dim, tp, dtype, device)
            : new AdaLayerNormZero(_dim, tp, 6, dtype, device);
        attn = new JointAttention(_dim, config.NumAttentionHeads, config.AttentionHeadDim, rank, hasPrompt: true, ContextPreOnly, config.UsesQkNorm, dtype);
        if (dual) attn2 = new JointAttention(_dim, config.NumAttentionHeads, config.AttentionHeadDim, rank, hasPrompt: false, false, config.UsesQkNorm, dtype);
        ff = new FeedForward(_dim, tp, dtype: dtype, device: device);
        if (!ContextPreOnly) ff_context = new FeedForward(_dim, tp, dtype: dtype, device: device);
        RegisterComponents();
    }

    /// <param name="image">[B, N/sp, D/tp]</param>
    /// <param name="prompt">[B, L, D/tp]</param>
    /// <param name="temb">the conditioning vector [B, D], replicated</param>
    /// <returns>the new prompt stream (null after a context-pre-only block) and the new image stream</returns>
    public (Tensor? Prompt, Tensor Image) Forward(Tensor image, Tensor prompt, Tensor temb)
    {
        using var scope = NewDisposeScope();
        var tp = _rank.Tp;
        var m = norm1.Forward(image, temb);
        Modulation? cm = null;
        Tensor normedPrompt;
        if (norm1_context is AdaLayerNormZero zero)
        {
            cm = zero.Forward(prompt, temb);
            normedPrompt = cm.Normed;
        }
        else
        {
            normedPrompt = ((AdaLayerNormContinuous)norm1_context).Forward(prompt, temb);
        }

        var (imageAttention, promptAttention) = attn.Forward(tp.AllGather(m.Normed, -1), tp.AllGather(normedPrompt, -1));
        image = GatedResidual(image, m.GateMsa, imageAttention);
        if (attn2 is not null)
            image = GatedResidual(image, m.GateMsa2!, attn2.Forward(tp.AllGather(m.Normed2!, -1), null).Image);
        image = GatedResidual(image, m.GateMlp, GatedMlp(ff, image, m.ShiftMlp, m.ScaleMlp));

        Tensor? newPrompt = null;
        if (cm is not null && ff_context is not null)
        {
            newPrompt = GatedResidual(prompt, cm.GateMsa, promptAttention!);
            newPrompt = GatedResidual(newPrompt, cm.GateMlp, GatedMlp(ff_context, newPrompt, cm.ShiftMlp, cm.ScaleMlp));
            newPrompt.MoveToOuterDisposeScope();
        }
        return (newPrompt, image.MoveToOuterDisposeScope());
    }

    /// <summary>stream + gate·update with the per-sample gate broadcast over tokens, in one addcmul pass.</summary>
    static Tensor GatedResidual(Tensor stream, Tensor gate, Tensor update)
    {
        var output = addcmul(stream, gate.unsqueeze(1), update, 1);
        Kernels.RecordElementwise("gated_residual", output, 2, stream, update);
        return output;
    }

    /// <summary>ff(norm(stream)·(1 + scale) + shift), the norm over the full (tp-distributed) features.</summary>
    Tensor GatedMlp(FeedForward mlp, Tensor stream, Tensor shift, Tensor scale)
    {
        var normed = AdaLayerNormZero.Modulate(DistributedLayerNorm.Apply(stream, _rank.Tp, _dim, 1e-6), shift, scale);
        return mlp.forward(_rank.Tp.AllGather(normed, -1));
    }
}
