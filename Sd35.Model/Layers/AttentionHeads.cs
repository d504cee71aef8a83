using static TorchSharp.torch;

namespace Sd35.Layers;

/// <summary>
/// The reshapes between a projection's output (batch, tokens, heads·head_dim) and the per-head layout
/// (batch, heads, tokens, head_dim) that attention works in. Heads are the leading chunks of the feature
/// dimension, as in every transformers / diffusers attention, so a column-parallel shard of a projection is
/// exactly a contiguous run of whole heads.
/// </summary>
static class AttentionHeads
{
    public static Tensor Split(Tensor x, long heads)
    {
        long batch = x.shape[0], tokens = x.shape[1];
        return x.view(batch, tokens, heads, x.shape[2] / heads).transpose(1, 2);
    }

    public static Tensor Merge(Tensor x)
    {
        long batch = x.shape[0], heads = x.shape[1], tokens = x.shape[2], headDim = x.shape[3];
        return x.transpose(1, 2).reshape(batch, tokens, heads * headDim);
    }

    /// <summary>The heads this rank owns; tensor parallelism splits whole heads, so they must divide evenly.</summary>
    public static int Local(int heads, int tpSize, string what)
    {
        if (heads % tpSize != 0)
            throw new ArgumentException($"{what}: {heads} attention heads do not split evenly across {tpSize} tensor-parallel ranks");
        return heads / tpSize;
    }
}
