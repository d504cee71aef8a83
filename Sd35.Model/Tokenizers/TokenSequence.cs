namespace Sd35.Tokenizers;

/// <summary>Fitting an encoded prompt to an encoder's fixed input length, shared by the CLIP and T5 tokenizers.</summary>
public static class TokenSequence
{
    /// <summary>
    /// Pads <paramref name="ids"/> with <paramref name="padId"/> up to <paramref name="length"/>, or truncates it
    /// the way Hugging Face tokenizers do: the text is cut, but the final end-of-text marker is kept, so the
    /// result is the first <c>length - 1</c> ids followed by the last one.
    /// </summary>
    public static int[] FitToLength(IReadOnlyList<int> ids, int length, int padId)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        if (ids.Count == 0)
        {
            throw new ArgumentException("An encoded prompt always ends with an end marker.", nameof(ids));
        }

        var fitted = new int[length];
        if (ids.Count > length)
        {
            for (int i = 0; i < length - 1; i++)
            {
                fitted[i] = ids[i];
            }

            fitted[length - 1] = ids[^1];
            return fitted;
        }

        for (int i = 0; i < ids.Count; i++)
        {
            fitted[i] = ids[i];
        }

        Array.Fill(fitted, padId, ids.Count, length - ids.Count);
        return fitted;
    }
}
