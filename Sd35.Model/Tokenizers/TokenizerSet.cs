namespace Sd35.Tokenizers;

/// <summary>The three tokenizers of SD3 / SD3.5: CLIP-L, CLIP-G and T5-XXL.</summary>
public sealed class TokenizerSet
{
    public TokenizerSet(ClipTokenizer clipL, ClipTokenizer clipG, T5Tokenizer t5)
    {
        ClipL = clipL ?? throw new ArgumentNullException(nameof(clipL));
        ClipG = clipG ?? throw new ArgumentNullException(nameof(clipG));
        T5 = t5 ?? throw new ArgumentNullException(nameof(t5));
    }

    public ClipTokenizer ClipL { get; }

    public ClipTokenizer ClipG { get; }

    public T5Tokenizer T5 { get; }

    /// <summary>
    /// Where the library's own copy of the tokenizer files lives: <c>tokenizers/</c> next to the assembly
    /// (Sd35.Model copies the repository's <c>fixtures/tokenizers</c> there on build).
    /// </summary>
    public static string DefaultDirectory => Path.Combine(AppContext.BaseDirectory, "tokenizers");

    /// <summary>
    /// The tokenizers of a diffusers SD3 model folder: <c>tokenizer/</c> (CLIP-L), <c>tokenizer_2/</c> (CLIP-G)
    /// and <c>tokenizer_3/spiece.model</c> (T5). Missing json configs fall back to SD3's settings.
    /// </summary>
    public static TokenizerSet FromDiffusersFolder(string modelDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        // A model without T5 (diffusers' text_encoder_3=None) has no tokenizer_3/; its T5 ids are never used,
        // so the shipped T5 vocabulary (the same for every T5 v1.1) stands in.
        var t5Folder = Path.Combine(modelDir, "tokenizer_3");
        return new TokenizerSet(
            ClipTokenizer.FromFolder(Path.Combine(modelDir, "tokenizer"), ClipSpecialTokens.Sd3ClipL),
            ClipTokenizer.FromFolder(Path.Combine(modelDir, "tokenizer_2"), ClipSpecialTokens.Sd3ClipG),
            Directory.Exists(t5Folder) || Directory.Exists(Path.Combine(modelDir, "text_encoder_3"))
                ? T5Tokenizer.FromFolder(t5Folder)
                : Default().T5);
    }

    /// <summary>
    /// SD3's tokenizers from the shipped files: <c>clip/vocab.json</c> and <c>clip/merges.txt</c> (CLIP-L and
    /// CLIP-G share them and differ only in their pad token) and <c>t5/spiece.model</c>, in
    /// <paramref name="directory"/> or else <see cref="DefaultDirectory"/>.
    /// </summary>
    public static TokenizerSet Default(string? directory = null)
    {
        directory ??= DefaultDirectory;
        string vocab = Path.Combine(directory, "clip", "vocab.json");
        string merges = Path.Combine(directory, "clip", "merges.txt");
        return new TokenizerSet(
            ClipTokenizer.ClipL(vocab, merges),
            ClipTokenizer.ClipG(vocab, merges),
            new T5Tokenizer(Path.Combine(directory, "t5", "spiece.model")));
    }
}
