namespace Sd35.Pipeline;

/// <summary>
/// Tokenizes one prompt to exactly <paramref name="length"/> ids, as the Hugging Face tokenizer does with
/// <c>padding="max_length", truncation=True</c>: begin/end markers included, padded with the tokenizer's pad id,
/// or cut keeping the final end marker.
/// </summary>
public delegate int[] TokenizeToLength(string prompt, int length);

/// <summary>
/// The three tokenizers SD3 prompt encoding needs. Delegates rather than tokenizer classes, so the prompt
/// encoder depends on no particular tokenizer implementation (and tests can feed stored ids).
/// </summary>
public sealed record Sd3Tokenizers(TokenizeToLength ClipL, TokenizeToLength ClipG, TokenizeToLength T5);
