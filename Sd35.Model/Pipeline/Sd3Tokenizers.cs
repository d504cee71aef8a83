using Sd35.Tokenizers;

namespace Sd35.Pipeline;

/// <summary>
/// Tokenizes one prompt to exactly <paramref name="length"/> ids, as the Hugging Face tokenizer does with
/// <c>padding="max_length", truncation=True</c>: begin/end markers included, padded with the tokenizer's pad id,
/// or cut keeping the final end marker.
/// </summary>
public delegate int[] TokenizeToLength(string prompt, int length);

/// <summary>
/// The three tokenizers SD3 prompt encoding needs. Delegates rather than tokenizer classes, so the prompt
/// encoder depends on no particular tokenizer implementation (and tests can feed stored ids). The length is
/// an argument because <c>max_sequence_length</c> is chosen per request, not per tokenizer.
/// </summary>
public sealed record Sd3Tokenizers(TokenizeToLength ClipL, TokenizeToLength ClipG, TokenizeToLength T5)
{
    /// <summary>The project's tokenizers (<see cref="TokenizerSet"/>), fitted to any length as Hugging Face does.</summary>
    public static Sd3Tokenizers From(TokenizerSet tokenizers) => new(Fit(tokenizers.ClipL), Fit(tokenizers.ClipG), Fit(tokenizers.T5));

    static TokenizeToLength Fit(IPromptTokenizer tokenizer) =>
        (prompt, length) => TokenSequence.FitToLength(tokenizer.Encode(prompt), length, tokenizer.PadId);
}
