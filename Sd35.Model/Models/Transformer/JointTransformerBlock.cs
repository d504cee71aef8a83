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
    readonly MeshRank _rank;
    readonly long _dim;

    public AdaLayerNormZero norm1;
    public nn.Module norm1_context;
    public JointAttention attn;
    public JointAttention? attn2;
    public FeedForward ff;
    public FeedForward? ff_context;

    public bool ContextPreOnly { get; }

    public JointTransformerBlock(SD3TransformerConfig config, int index, MeshRank rank, ScalarType dtype = ScalarType.Float32)
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

    /// <summary>
    /// The block's AdaLN modulation vectors for conditioning vectors <paramref name="temb"/> [R, D] (any number of rows:
    /// one forward's batch, or every step of a schedule at once): they do not depend on the latents.
    /// </summary>
    internal BlockModulation Modulations(Tensor temb) => new(norm1.Embed(temb), norm1_context switch
    {
        AdaLayerNormZero zero => zero.Embed(temb),
        var continuous => ((AdaLayerNormContinuous)continuous).Embed(temb),
    });

    /// <param name="image">[B, N/sp, D/tp]</param>
    /// <param name="prompt">[B, L, D/tp]</param>
    /// <param name="temb">the conditioning vector [B, D], replicated</param>
    /// <returns>the new prompt stream (null after a context-pre-only block) and the new image stream</returns>
    public (Tensor? Prompt, Tensor Image) Forward(Tensor image, Tensor prompt, Tensor temb)
    {
        using var modulation = Modulations(temb);
        return Forward(image, prompt, modulation);
    }

    /// <summary>As <see cref="Forward(Tensor, Tensor, Tensor)"/>, with the modulation vectors of this forward's batch.</summary>
    internal (Tensor? Prompt, Tensor Image) Forward(Tensor image, Tensor prompt, BlockModulation modulation)
    {
        using var scope = NewDisposeScope();
        var tp = _rank.Tp;
        var m = norm1.Apply(image, modulation.Image);
        Modulation? cm = null;
        Tensor normedPrompt;
        if (norm1_context is AdaLayerNormZero zero)
        {
            cm = zero.Apply(prompt, modulation.Prompt);
            normedPrompt = cm.Normed;
        }
        else
        {
            normedPrompt = ((AdaLayerNormContinuous)norm1_context).Apply(prompt, modulation.Prompt);
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

/// <summary>
/// A joint block's AdaLN modulation vectors: the image stream's (norm1) and the prompt stream's (norm1_context),
/// each [R, k·D/tp] with one row per sample — or per (step, sample) when made for a whole schedule.
/// </summary>
sealed record BlockModulation(Tensor Image, Tensor Prompt) : IDisposable
{
    /// <summary>The rows of one step of a schedule made with <paramref name="batch"/> rows per step (views, no copy).</summary>
    public BlockModulation Rows(int step, long batch) => new(Image.narrow(0, step * batch, batch), Prompt.narrow(0, step * batch, batch));

    public void Dispose()
    {
        Image.Dispose();
        Prompt.Dispose();
    }
}
