namespace Sd35.Tokenizers;

/// <summary>Turns a prompt into the token ids one SD3 text encoder takes.</summary>
public interface IPromptTokenizer
{
    /// <summary>
    /// Exactly <paramref name="length"/> ids, as the Hugging Face tokenizer gives with
    /// <c>padding="max_length", truncation=True</c>: the encoder's begin/end markers included, filled up with the pad
    /// id, or cut keeping the final end marker.
    /// </summary>
    int[] Encode(string prompt, int length);
}
