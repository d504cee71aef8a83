using Sd35.Layers.Normalization;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Layers.Attention;

/// <summary>
/// diffusers' <c>Attention</c> as SD3 configures it (JointAttnProcessor2_0): q/k/v projections of the image
/// stream, optional per-head RMSNorm of q and k, and — when the block has a prompt stream — add_q/k/v projections
/// of the prompt with their own norms, one softmax over the joint sequence, and separate output projections
/// (<c>to_out.0</c>, and <c>to_add_out</c> unless the block is context-pre-only). Without a prompt stream it is
/// the plain self-attention of MMDiT-X's <c>attn2</c>.
/// Tensor parallel by whole heads: q/k/v are column-parallel (heads padded with zero rows up to a multiple of
/// tp), each rank attends with its heads, the heads are AllGathered on tp, and the output projections are
/// column-parallel over the padded head features (zero columns for padded heads), returning D/tp features.
/// </summary>
public sealed class JointAttention : nn.Module
{
    readonly MeshRank _rank;
    readonly long _headDim;
    readonly long _localHeads;

    public ColumnParallelLinear to_q, to_k, to_v;
    public RmsNorm? norm_q, norm_k;
    public ModuleList<ColumnParallelLinear> to_out;
    public ColumnParallelLinear? add_q_proj, add_k_proj, add_v_proj;
    public RmsNorm? norm_added_q, norm_added_k;
    public ColumnParallelLinear? to_add_out;

    public JointAttention(long dim, long heads, long headDim, MeshRank rank, bool hasPrompt, bool contextPreOnly, bool qkNorm,
        ScalarType dtype = ScalarType.Float32) : base(nameof(JointAttention))
    {
        _rank = rank;
        _headDim = headDim;
        var tp = rank.Tp;
        long paddedHeads = HeadPadding.Padded(checked((int)heads), tp.Size);
        _localHeads = paddedHeads / tp.Size;
        long inner = heads * headDim, paddedInner = paddedHeads * headDim;
        var device = rank.Device;

        ColumnParallelLinear HeadProjection() => new(dim, inner, tp, paddedOut: paddedInner, dtype: dtype, device: device);
        ColumnParallelLinear OutProjection() => new(inner, dim, tp, paddedIn: paddedInner, dtype: dtype, device: device);
        RmsNorm? HeadNorm() => qkNorm ? new RmsNorm(headDim, 1e-6, dtype, device) : null;

        to_q = HeadProjection();
        to_k = HeadProjection();
        to_v = HeadProjection();
        norm_q = HeadNorm();
        norm_k = HeadNorm();
        to_out = nn.ModuleList(OutProjection());
        if (hasPrompt)
        {
            add_q_proj = HeadProjection();
            add_k_proj = HeadProjection();
            add_v_proj = HeadProjection();
            norm_added_q = HeadNorm();
            norm_added_k = HeadNorm();
            if (!contextPreOnly) to_add_out = OutProjection();
        }
        RegisterComponents();
    }

    /// <param name="image">normed image tokens [B, n, D], full features (gathered on tp)</param>
    /// <param name="prompt">normed prompt tokens [B, L, D], full features, or null</param>
    /// <returns>image output [B, n, D/tp] and prompt output [B, L, D/tp] (null when there is no prompt stream or the block is context-pre-only)</returns>
    public (Tensor Image, Tensor? Prompt) Forward(Tensor image, Tensor? prompt)
    {
        using var scope = NewDisposeScope();
        var q = Heads(to_q, norm_q, image);
        var k = Heads(to_k, norm_k, image);
        var v = Heads(to_v, null, image);
        Tensor? promptQ = null, promptK = null, promptV = null;
        if (prompt is not null && add_q_proj is not null)
        {
            promptQ = Heads(add_q_proj, norm_added_q, prompt);
            promptK = Heads(add_k_proj!, norm_added_k, prompt);
            promptV = Heads(add_v_proj!, null, prompt);
        }
        var (imageHeads, promptHeads) = Attend(q, k, v, promptQ, promptK, promptV);
        var imageOut = to_out[0].forward(GatherHeads(imageHeads)).MoveToOuterDisposeScope();
        Tensor? promptOut = promptHeads is not null && to_add_out is not null
            ? to_add_out.forward(GatherHeads(promptHeads)).MoveToOuterDisposeScope()
            : null;
        return (imageOut, promptOut);
    }

    /// <summary>
    /// Softmax attention over the joint sequence [image ; prompt], the prompt appended at the rear as diffusers'
    /// <c>JointAttnProcessor2_0</c> does; with sp &gt; 1 the image tokens are sharded and ring attention computes the
    /// same function. Without a prompt stream (MMDiT-X's attn2) it is one SDPA call, or the ring with an empty prompt.
    /// </summary>
    (Tensor Image, Tensor? Prompt) Attend(Tensor q, Tensor k, Tensor v, Tensor? promptQ, Tensor? promptK, Tensor? promptV)
    {
        var sp = _rank.Sp;
        if (promptQ is not null) return RingJointAttention.Forward(q, k, v, promptQ, promptK!, promptV!, sp);
        if (sp.Size == 1) return (Kernels.Attention(q, k, v), null);
        using var empty = zeros([q.shape[0], q.shape[1], 0, q.shape[3]], q.dtype, q.device);
        var (image, prompt) = RingJointAttention.Forward(q, k, v, empty, empty, empty, sp);
        prompt.Dispose();
        return (image, null);
    }

    /// <summary>Projects to this rank's heads: [B, n, D] → [B, H/tp, n, d], with the per-head norm if any.</summary>
    Tensor Heads(ColumnParallelLinear projection, RmsNorm? norm, Tensor tokens)
    {
        var heads = projection.forward(tokens).view(tokens.shape[0], tokens.shape[1], _localHeads, _headDim).transpose(1, 2);
        return norm is null ? heads : norm.forward(heads);
    }

    /// <summary>[B, H/tp, n, d] → [B, n, H_padded·d]: this rank's heads, then AllGather on tp.</summary>
    Tensor GatherHeads(Tensor heads)
    {
        var local = heads.transpose(1, 2).reshape(heads.shape[0], heads.shape[2], _localHeads * _headDim);
        return _rank.Tp.AllGather(local, -1);
    }
}
