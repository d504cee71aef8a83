using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints.Layouts;

/// <summary>
/// How one model tensor is stored in another layout: under <see cref="Stored"/>, whole, or as row piece
/// <see cref="Chunk"/> of <see cref="Chunks"/> (a fused qkv), with its two row halves swapped (the original SD3
/// <c>adaLN_modulation</c> of a final norm orders shift, scale where diffusers orders scale, shift), or as a 1×1
/// convolution kernel where the model holds a linear weight (the ldm VAE's attention). Rows are the outermost
/// dimension, so each operation works on raw quantized blocks (uint8 rows) as on dense tensors.
/// </summary>
sealed record KeyRule(string Model, string Stored, int Chunk = 0, int Chunks = 1, bool SwapHalves = false, bool ConvKernel = false)
{
    public static KeyRule Same(string model, string stored) => new(model, stored);

    /// <summary>A plain rename: the stored tensor is the model's, read straight into place.</summary>
    public bool IsRename => Chunks == 1 && !SwapHalves && !ConvKernel;

    /// <summary>The model's shape of a stored tensor.</summary>
    public long[] ModelShape(long[] stored)
    {
        var shape = (long[])stored.Clone();
        if (Chunks > 1) shape[0] /= Chunks;
        return ConvKernel && shape.Length == 4 ? shape[..2] : shape;
    }

    /// <summary>The model's tensor cut from the stored one (a new tensor; <paramref name="stored"/> stays the caller's).</summary>
    public Tensor ToModel(Tensor stored)
    {
        // The other chunks and the intermediate views are handles of their own; left to the finalizer they kept every
        // fused tensor's bytes alive after its model was released (a staged GGUF run held 1.7 GiB through decoding).
        using var scope = NewDisposeScope();
        var piece = Chunks > 1 ? stored.chunk(Chunks, 0)[Chunk] : stored.alias();
        if (SwapHalves) piece = cat(piece.chunk(2, 0).Reverse().ToArray(), 0);
        if (ConvKernel && piece.dim() == 4) piece = piece.reshape(piece.shape[0], piece.shape[1]);
        return piece.contiguous().clone().MoveToOuterDisposeScope();
    }

    /// <summary>The stored tensor made from the model's pieces in <see cref="Chunk"/> order (for writers).</summary>
    public static Tensor ToStored(IReadOnlyList<(KeyRule Rule, Tensor Model)> pieces)
    {
        using var scope = NewDisposeScope();
        var ordered = pieces.OrderBy(p => p.Rule.Chunk).Select(p =>
        {
            var t = p.Model;
            if (p.Rule.SwapHalves) t = cat(t.chunk(2, 0).Reverse().ToArray(), 0);
            if (p.Rule.ConvKernel && t.dim() == 2) t = t.reshape(t.shape[0], t.shape[1], 1, 1);
            return t;
        }).ToArray();
        return (ordered.Length == 1 ? ordered[0].contiguous() : cat(ordered, 0)).MoveToOuterDisposeScope();
    }
}
