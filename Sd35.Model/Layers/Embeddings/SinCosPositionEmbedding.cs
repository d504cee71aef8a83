using static TorchSharp.torch;

namespace Sd35.Layers.Embeddings;

/// <summary>
/// The fixed 2-D sine-cosine position table of SD3's patch embedding (diffusers <c>get_2d_sincos_pos_embed</c>),
/// computed in float64: grid coordinates are <c>arange(gridSize) / (gridSize / baseSize)</c>; the first half of
/// the features encodes the column (w) coordinate, the second half the row (h); each half is [sin, cos] over
/// frequencies 1/10000^(i/(d/4)). Real checkpoints store this table; computing it lets a freshly built model
/// (benchmarks, tests) start from the same values.
/// </summary>
public static class SinCosPositionEmbedding
{
    /// <param name="device">
    /// null or the CPU computes the table there; the meta device only shapes it, so a model built on meta for a
    /// preflight check costs no memory even for a config with an absurd <c>pos_embed_max_size</c>
    /// </param>
    public static Tensor Table(long embedDim, long gridSize, long baseSize, Device? device = null)
    {
        if (embedDim % 4 != 0) throw new ArgumentException($"embed_dim {embedDim} must be divisible by 4 for a 2-D sin-cos table");
        using var scope = NewDisposeScope();
        var where = device is not null && Sd35.Profiling.ShapeOnly.Is(device) ? device : CPU;
        var coords = arange(gridSize, float64, where) / ((double)gridSize / baseSize);
        var h = coords.view(-1, 1).expand(gridSize, gridSize).reshape(-1);
        var w = coords.view(1, -1).expand(gridSize, gridSize).reshape(-1);
        var table = cat([OneDimension(embedDim / 2, w), OneDimension(embedDim / 2, h)], 1);
        return table.to(float32).unsqueeze(0).MoveToOuterDisposeScope();
    }

    static Tensor OneDimension(long dim, Tensor positions)
    {
        var omega = 1.0 / pow(10000.0, arange(dim / 2, float64, positions.device) / (dim / 2.0));
        var angles = positions.view(-1, 1) * omega.view(1, -1);
        return cat([angles.sin(), angles.cos()], 1);
    }
}
