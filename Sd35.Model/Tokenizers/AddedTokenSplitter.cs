namespace Sd35.Tokenizers;

/// <summary>
/// Splits raw text on a tokenizer's "added tokens" before any normalization, as Hugging Face tokenizers do:
/// each occurrence of an added token's exact text becomes that token's id, and only the text between them is
/// cleaned up and BPE-encoded. This is what makes SD3's CLIP-G tokenizer, whose pad token '!' is an added
/// token, encode every literal '!' as id 0. Where two added tokens match at one position the longer wins.
/// </summary>
sealed class AddedTokenSplitter
{
    readonly KeyValuePair<string, int>[] _tokensLongestFirst;

    public AddedTokenSplitter(IReadOnlyDictionary<string, int> addedTokens)
    {
        ArgumentNullException.ThrowIfNull(addedTokens);
        if (addedTokens.Keys.Any(string.IsNullOrEmpty))
        {
            throw new ArgumentException("Added tokens must not be empty.", nameof(addedTokens));
        }

        _tokensLongestFirst = addedTokens.OrderByDescending(t => t.Key.Length).ToArray();
        AddedTokens = addedTokens;
    }

    public IReadOnlyDictionary<string, int> AddedTokens { get; }

    /// <summary>The text in order as pieces: plain text (<c>Id</c> null) or an added token (its id).</summary>
    public IEnumerable<(string Text, int? Id)> Split(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int plainStart = 0;
        int position = 0;
        while (position < text.Length)
        {
            KeyValuePair<string, int>? match = MatchAt(text, position);
            if (match is null)
            {
                position++;
                continue;
            }

            if (position > plainStart)
            {
                yield return (text[plainStart..position], null);
            }

            yield return (match.Value.Key, match.Value.Value);
            position += match.Value.Key.Length;
            plainStart = position;
        }

        if (text.Length > plainStart)
        {
            yield return (text[plainStart..], null);
        }
    }

    KeyValuePair<string, int>? MatchAt(string text, int position)
    {
        foreach (KeyValuePair<string, int> token in _tokensLongestFirst)
        {
            if (string.CompareOrdinal(text, position, token.Key, 0, token.Key.Length) == 0)
            {
                return token;
            }
        }

        return null;
    }
}
