using System.Text.Json;
using Microsoft.ML.Tokenizers;
using Sd35.Errors;

namespace Sd35.Tokenizers;

/// <summary>
/// CLIP's tokenizer as SD3 runs it for its two CLIP text encoders: text split on added tokens, each piece
/// cleaned up (<see cref="ClipTextNormalizer"/>), pre-tokenized (<see cref="ClipPreTokenizer"/>) and
/// byte-level BPE-encoded with the <c>&lt;/w&gt;</c> end-of-word suffix by Microsoft.ML.Tokenizers, wrapped in
/// <c>&lt;|startoftext|&gt;</c> … <c>&lt;|endoftext|&gt;</c> and fitted to the encoder's length (77 in SD3).
/// </summary>
public sealed class ClipTokenizer : IPromptTokenizer
{
    public const string StartOfText = "<|startoftext|>";
    public const string EndOfText = "<|endoftext|>";
    public const int ContextLength = 77;

    readonly BpeTokenizer _bpe;
    readonly AddedTokenSplitter _splitter;

    public ClipTokenizer(string vocabPath, string mergesPath, ClipSpecialTokens specialTokens)
    {
        ArgumentNullException.ThrowIfNull(specialTokens);
        vocabPath = TokenizerFiles.Require(vocabPath, "CLIP vocabulary");
        mergesPath = TokenizerFiles.Require(mergesPath, "CLIP merges file");

        Dictionary<string, int> vocabulary = ReadVocabulary(vocabPath);
        BeginId = VocabularyId(vocabulary, StartOfText, vocabPath);
        EndId = VocabularyId(vocabulary, EndOfText, vocabPath);
        IEnumerable<string> merges = ReadMerges(vocabPath, mergesPath);
        _bpe = CreateBpe(vocabPath, mergesPath, new BpeOptions(vocabulary)
        {
            Merges = merges,
            ByteLevel = true,
            EndOfWordSuffix = "</w>",
            Normalizer = ClipTextNormalizer.Instance,
            PreTokenizer = ClipPreTokenizer.Instance,
            // The markers can also surface inside a piece after clean-up (e.g. typed in upper case); CLIP's regex
            // keeps them whole and CLIP maps them straight to their ids, as the library does for special tokens.
            SpecialTokens = new Dictionary<string, int> { [StartOfText] = BeginId, [EndOfText] = EndId },
        });

        // As in transformers, the markers and the pad token are added tokens besides any the config lists.
        var addedTokens = new Dictionary<string, int>(specialTokens.ExtraAddedTokens ?? new Dictionary<string, int>())
        {
            [StartOfText] = BeginId,
            [EndOfText] = EndId,
        };
        PadId = addedTokens.TryGetValue(specialTokens.PadToken, out int padId)
            ? padId
            : VocabularyId(vocabulary, specialTokens.PadToken, vocabPath);
        addedTokens[specialTokens.PadToken] = PadId;
        _splitter = new AddedTokenSplitter(addedTokens);
    }

    /// <summary>
    /// The library checks that vocabulary and merges fit together (every merged token in the vocabulary, no pair or
    /// id twice) only when it builds the model, and says so with general exception types: named here.
    /// </summary>
    static BpeTokenizer CreateBpe(string vocabPath, string mergesPath, BpeOptions options)
    {
        try
        {
            return BpeTokenizer.Create(options);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or KeyNotFoundException)
        {
            throw new TokenizerException(mergesPath, $"does not fit the vocabulary {vocabPath}: {e.Message}", e);
        }
    }

    /// <summary>CLIP-L as SD3's <c>tokenizer/</c> has it: pads with <c>&lt;|endoftext|&gt;</c> (49407).</summary>
    public static ClipTokenizer ClipL(string vocabPath, string mergesPath) =>
        new(vocabPath, mergesPath, ClipSpecialTokens.Sd3ClipL);

    /// <summary>CLIP-G as SD3's <c>tokenizer_2/</c> has it: pads with '!' (0), and every '!' in a prompt is 0.</summary>
    public static ClipTokenizer ClipG(string vocabPath, string mergesPath) =>
        new(vocabPath, mergesPath, ClipSpecialTokens.Sd3ClipG);

    /// <summary>
    /// Loads a Hugging Face CLIP tokenizer folder (<c>vocab.json</c>, <c>merges.txt</c>, and if present
    /// <c>special_tokens_map.json</c> / <c>tokenizer_config.json</c>; without them <paramref name="defaults"/>).
    /// </summary>
    public static ClipTokenizer FromFolder(string tokenizerDir, ClipSpecialTokens defaults)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenizerDir);
        return new ClipTokenizer(
            Path.Combine(tokenizerDir, "vocab.json"),
            Path.Combine(tokenizerDir, "merges.txt"),
            ClipSpecialTokens.Load(tokenizerDir, defaults));
    }

    public int PadId { get; }

    public int BeginId { get; }

    public int EndId { get; }

    /// <summary>The texts that are split off before BPE and encoded as one id each.</summary>
    public IReadOnlyDictionary<string, int> AddedTokens => _splitter.AddedTokens;

    /// <summary>All ids of the prompt between the begin/end markers, neither truncated nor padded.</summary>
    public int[] Encode(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var ids = new List<int> { BeginId };
        foreach ((string text, int? addedTokenId) in _splitter.Split(prompt))
        {
            if (addedTokenId is int id)
            {
                ids.Add(id);
            }
            else
            {
                ids.AddRange(_bpe.EncodeToIds(text));
            }
        }

        ids.Add(EndId);
        return ids.ToArray();
    }

    public int[] Encode(string prompt, int length) => TokenSequence.FitToLength(Encode(prompt), length, PadId);

    static int VocabularyId(Dictionary<string, int> vocabulary, string token, string vocabPath) =>
        vocabulary.TryGetValue(token, out int id)
            ? id
            : throw new TokenizerException(vocabPath, $"the CLIP vocabulary has no token '{token}'");

    // vocab.json is one JSON object from token text to id.
    static Dictionary<string, int> ReadVocabulary(string path)
    {
        using JsonDocument document = TokenizerFiles.ReadJson(path);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw new TokenizerException(path, $"expected a JSON object of token → id, got {document.RootElement.ValueKind}");
        }

        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty entry in document.RootElement.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
            {
                throw new TokenizerException(path, $"token '{entry.Name}' has id {entry.Value.GetRawText()}, expected a non-negative integer");
            }

            vocabulary[entry.Name] = id;
        }

        return vocabulary;
    }

    // The library reads merges.txt (its "#version" header included); a file it cannot read is named here.
    static IEnumerable<string> ReadMerges(string vocabPath, string mergesPath)
    {
        try
        {
            return new BpeOptions(vocabPath, mergesPath).Merges?.ToList() ?? [];
        }
        catch (Exception e) when (e is not TokenizerException and not OutOfMemoryException)
        {
            throw new TokenizerException(mergesPath, $"is not a BPE merges file: {e.Message}", e);
        }
    }
}
