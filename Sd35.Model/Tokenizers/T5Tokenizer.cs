using Microsoft.ML.Tokenizers;
using Sd35.Errors;

namespace Sd35.Tokenizers;

/// <summary>
/// T5's SentencePiece (unigram) tokenizer as SD3 runs it for its T5-XXL encoder: no BOS, <c>&lt;/s&gt;</c>
/// appended, padded with <c>&lt;pad&gt;</c> (0) or truncated to the request's <c>max_sequence_length</c>. Encoding is Microsoft.ML.Tokenizers'
/// SentencePieceTokenizer with two corrections, see <see cref="LoadSentencePiece"/> and <see cref="Encode"/>.
/// </summary>
public sealed class T5Tokenizer : IPromptTokenizer
{
    // ModelProto.trainer_spec (2) -> TrainerSpec.bos_id (41), in sentencepiece_model.proto.
    static readonly int[] BosIdPath = [2, 41];

    readonly SentencePieceTokenizer _sentencePiece;

    public T5Tokenizer(string spieceModelPath)
    {
        _sentencePiece = LoadSentencePiece(TokenizerFiles.Require(spieceModelPath, "T5 SentencePiece model"));
        PadId = _sentencePiece.Vocabulary.TryGetValue("<pad>", out int padId) ? padId : 0;
    }

    /// <summary>Loads a tokenizer folder's <c>spiece.model</c>, e.g. <c>tokenizer_3/</c> of a diffusers SD3 model.</summary>
    public static T5Tokenizer FromFolder(string tokenizerDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenizerDir);
        return new T5Tokenizer(Path.Combine(tokenizerDir, "spiece.model"));
    }

    public int PadId { get; }

    public int EndId => _sentencePiece.EndOfSentenceId;

    public int UnknownId => _sentencePiece.UnknownId;

    /// <summary>All ids of the prompt and the final <c>&lt;/s&gt;</c>, neither truncated nor padded.</summary>
    public int[] Encode(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        IReadOnlyList<int> pieces = _sentencePiece.EncodeToIds(
            prompt, addBeginningOfSentence: false, addEndOfSentence: false);
        // SentencePiece merges a run of characters missing from the vocabulary into a single <unk> piece; the
        // library emits one <unk> per character. A piece in the vocabulary never contains an unknown character,
        // so adjacent <unk>s always come from one such run.
        var ids = new List<int>(pieces.Count + 1);
        foreach (int id in pieces)
        {
            if (id != UnknownId || ids.Count == 0 || ids[^1] != UnknownId)
            {
                ids.Add(id);
            }
        }

        ids.Add(EndId);
        return ids.ToArray();
    }

    public int[] Encode(string prompt, int length) => TokenSequence.FitToLength(Encode(prompt), length, PadId);

    // T5's model has no BOS piece (bos_id = -1), and the library indexes its piece table with that id while
    // loading (IndexOutOfRangeException). Pointing bos_id at the pad piece in memory lets it load; the BOS id
    // only matters when a BOS is added, which T5 never does, so the encodings are unchanged.
    // Anything the parsers reject (a truncated or foreign file: "Unsupported protobuf wire type 4") names the file.
    static SentencePieceTokenizer LoadSentencePiece(string path)
    {
        try
        {
            byte[] model = ProtobufVarintEditor.UpdateVarint(
                File.ReadAllBytes(path), BosIdPath, bosId => bosId < 0 ? 0 : bosId);
            using var stream = new MemoryStream(model, writable: false);
            return SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not TokenizerException and not OutOfMemoryException)
        {
            throw new TokenizerException(path, $"is not a valid SentencePiece model: {e.Message}", e);
        }
    }
}
