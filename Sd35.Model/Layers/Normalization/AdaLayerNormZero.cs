using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Layers.Normalization;

/// <summary>
/// What AdaLayerNormZero gives a joint block: the input normed and modulated for attention, the gates and the
/// MLP's shift/scale (each [B, D/tp]), and for MMDiT-X the second attention's normed input and gate.
/// </summary>
public sealed record Modulation(Tensor Normed, Tensor GateMsa, Tensor ShiftMlp, Tensor ScaleMlp, Tensor GateMlp,
    Tensor? Normed2 = null, Tensor? GateMsa2 = null);

/// <summary>
/// diffusers' <c>AdaLayerNormZero</c> (six chunks: shift, scale, gate for attention and for the MLP) and, with
/// nine chunks, <c>SD35AdaLayerNormZeroX</c> (a second shift/scale/gate for MMDiT-X's extra attention).
/// The modulation linear is column-parallel with each rank holding its slice of every chunk, so the chunks it
/// computes line up with its D/tp slice of the hidden state and no communication is needed.
/// </summary>
public sealed class AdaLayerNormZero : nn.Module
{
    readonly IProcessGroup _tp;
    readonly long _dim;
    readonly int _chunks;
    public ColumnParallelLinear linear;

    public AdaLayerNormZero(long dim, IProcessGroup tp, int chunks = 6, ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base(nameof(AdaLayerNormZero))
    {
        _tp = tp;
        _dim = dim;
        _chunks = chunks;
        linear = new ColumnParallelLinear(dim, chunks * dim, tp, chunks: chunks, dtype: dtype, device: device);
        RegisterComponents();
    }

    /// <summary>
    /// The modulation vectors linear(silu(temb)) ([B, chunks·D/tp]): they depend only on the conditioning vector, so
    /// a whole schedule's worth is one GEMM over every step's rows (see <c>TransformerConditioning</c>).
    /// </summary>
    public Tensor Embed(Tensor temb)
    {
        using var activated = nn.functional.silu(temb);
        return linear.forward(activated);
    }

    /// <summary>
    /// Chunks in checkpoint order: shift, scale, gate (attention), shift, scale, gate (MLP) and, for MMDiT-X,
    /// shift, scale, gate of the second attention. Tensors are created in the caller's dispose scope.
    /// </summary>
    public Modulation Forward(Tensor x, Tensor temb) => Apply(x, Embed(temb));

    /// <summary>As <see cref="Forward"/>, from modulation vectors made by <see cref="Embed"/>.</summary>
    public Modulation Apply(Tensor x, Tensor embedding)
    {
        var c = embedding.chunk(_chunks, 1);
        var normed = DistributedLayerNorm.Apply(x, _tp, _dim, 1e-6);
        var attention = Modulate(normed, shift: c[0], scale: c[1]);
        return _chunks == 9
            ? new Modulation(attention, c[2], c[3], c[4], c[5], Modulate(normed, shift: c[6], scale: c[7]), c[8])
            : new Modulation(attention, c[2], c[3], c[4], c[5]);
    }

    /// <summary>
    /// x·(1 + scale) + shift with per-sample modulation vectors broadcast over tokens, as one addcmul pass over x
    /// (the same product and sum, without the token-sized intermediate of x·(1 + scale)).
    /// </summary>
    public static Tensor Modulate(Tensor x, Tensor shift, Tensor scale)
    {
        using var scope = NewDisposeScope();
        var modulated = addcmul(shift.unsqueeze(1), x, scale.unsqueeze(1) + 1, 1);
        Kernels.RecordElementwise("modulate", modulated, 2, x);
        return modulated.MoveToOuterDisposeScope();
    }
}
