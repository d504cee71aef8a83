using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// The conditioning of one side (positive or negative) for the MMDiT, as diffusers' <c>encode_prompt</c> returns it.
/// </summary>
/// <param name="PromptEmbeds">(batch, 77 + T5 tokens, joint_attention_dim): the CLIP tokens then the T5 tokens.</param>
/// <param name="PooledPromptEmbeds">(batch, CLIP-L projection + CLIP-G projection).</param>
public sealed record PromptEmbeddings(Tensor PromptEmbeds, Tensor PooledPromptEmbeds) : IDisposable
{
    public void Dispose()
    {
        PromptEmbeds.Dispose();
        PooledPromptEmbeds.Dispose();
    }
}

/// <summary>Both sides for classifier-free guidance; <see cref="Negative"/> is null when guidance is off.</summary>
public sealed record EncodedPrompt(PromptEmbeddings Positive, PromptEmbeddings? Negative) : IDisposable
{
    public void Dispose()
    {
        Positive.Dispose();
        Negative?.Dispose();
    }
}
