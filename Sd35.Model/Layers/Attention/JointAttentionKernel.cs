using Sd35.Mesh;
using static TorchSharp.torch;

namespace Sd35.Layers.Attention;

/// <summary>
/// Softmax attention of image tokens and prompt tokens over the joint sequence [image ; prompt], the prompt
/// appended at the rear as diffusers' <c>JointAttnProcessor2_0</c> does. On one sequence-parallel rank it is one
/// SDPA call; with sp &gt; 1 the image tokens are sharded and ring attention computes the same function.
/// </summary>
public static class JointAttentionKernel
{
    /// <param name="q">image queries [B, H, n, d] (this rank's n tokens)</param>
    /// <param name="jq">prompt queries [B, H, L, d] (replicated over sp), or null for image-only attention</param>
    /// <returns>image output [B, H, n, d] and prompt output [B, H, L, d] (null without prompt)</returns>
    public static (Tensor Image, Tensor? Prompt) Compute(Tensor q, Tensor k, Tensor v, Tensor? jq, Tensor? jk, Tensor? jv, IProcessGroup sp)
    {
        if (sp.Size > 1) return RingAttention(q, k, v, jq, jk, jv, sp);
        if (jq is null) return (nn.functional.scaled_dot_product_attention(q, k, v), null);

        using var scope = NewDisposeScope();
        long n = q.shape[2];
        var output = nn.functional.scaled_dot_product_attention(cat([q, jq], 2), cat([k, jk!], 2), cat([v, jv!], 2));
        var image = output.narrow(2, 0, n).MoveToOuterDisposeScope();
        var prompt = output.narrow(2, n, output.shape[2] - n).MoveToOuterDisposeScope();
        return (image, prompt);
    }

    static (Tensor, Tensor?) RingAttention(Tensor q, Tensor k, Tensor v, Tensor? jq, Tensor? jk, Tensor? jv, IProcessGroup sp) =>
        throw new NotSupportedException("ring attention (sp > 1) arrives with the mesh backend");
}
