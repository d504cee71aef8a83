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
        if (jq is not null) return RingJointAttention.Forward(q, k, v, jq, jk!, jv!, sp);
        if (sp.Size == 1) return (nn.functional.scaled_dot_product_attention(q, k, v), null);

        // Image-only attention (MMDiT-X's attn2) over a sharded sequence: the same ring with an empty prompt.
        using var empty = zeros([q.shape[0], q.shape[1], 0, q.shape[3]], q.dtype, q.device);
        var (image, prompt) = RingJointAttention.Forward(q, k, v, empty, empty, empty, sp);
        prompt.Dispose();
        return (image, null);
    }
}
