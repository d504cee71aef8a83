using System.Text.Json;

namespace Sd35.Tokenizers;

/// <summary>
/// Which token a CLIP tokenizer pads with, and which extra "added tokens" split the text before BPE. In a
/// Hugging Face tokenizer every special token (the pad token included) is such an added token, which is why
/// SD3's CLIP-G tokenizer, padding with '!', also turns each '!' of a prompt into id 0.
/// </summary>
/// <param name="PadToken">The pad token's text, looked up in the vocabulary for its id.</param>
/// <param name="ExtraAddedTokens">Added tokens besides BOS, EOS and the pad token, with their ids.</param>
public sealed record ClipSpecialTokens(string PadToken, IReadOnlyDictionary<string, int>? ExtraAddedTokens = null)
{
    /// <summary>SD3's <c>tokenizer/</c> (CLIP-L): pads with <c>&lt;|endoftext|&gt;</c> = 49407.</summary>
    public static ClipSpecialTokens Sd3ClipL { get; } = new("<|endoftext|>");

    /// <summary>SD3's <c>tokenizer_2/</c> (CLIP-G): pads with '!' = 0.</summary>
    public static ClipSpecialTokens Sd3ClipG { get; } = new("!");

    /// <summary>
    /// Reads the pad token and added tokens from a Hugging Face tokenizer folder's
    /// <c>special_tokens_map.json</c> (which wins, as in transformers) and <c>tokenizer_config.json</c>;
    /// what neither file states comes from <paramref name="defaults"/>.
    /// </summary>
    public static ClipSpecialTokens Load(string tokenizerDir, ClipSpecialTokens defaults)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        using JsonDocument? config = ReadJson(Path.Combine(tokenizerDir, "tokenizer_config.json"));
        using JsonDocument? specialTokensMap = ReadJson(Path.Combine(tokenizerDir, "special_tokens_map.json"));
        string padToken = TokenText(specialTokensMap, "pad_token")
            ?? TokenText(config, "pad_token")
            ?? defaults.PadToken;
        return new ClipSpecialTokens(padToken, AddedTokensDecoder(config) ?? defaults.ExtraAddedTokens);
    }

    static JsonDocument? ReadJson(string path) =>
        File.Exists(path) ? TokenizerFiles.ReadJson(path) : null;

    // A special token is written either as its text or as an AddedToken object with a "content" field.
    static string? TokenText(JsonDocument? document, string key)
    {
        if (document is null || document.RootElement.ValueKind != JsonValueKind.Object
            || !document.RootElement.TryGetProperty(key, out JsonElement token))
        {
            return null;
        }

        return token.ValueKind switch
        {
            JsonValueKind.String => token.GetString(),
            JsonValueKind.Object when token.TryGetProperty("content", out JsonElement content) && content.ValueKind == JsonValueKind.String
                => content.GetString(),
            _ => null,
        };
    }

    // tokenizer_config.json lists added tokens as { "<id>": { "content": "<text>", ... } }.
    static Dictionary<string, int>? AddedTokensDecoder(JsonDocument? document)
    {
        if (document is null || document.RootElement.ValueKind != JsonValueKind.Object
            || !document.RootElement.TryGetProperty("added_tokens_decoder", out JsonElement decoder)
            || decoder.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        var tokens = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty entry in decoder.EnumerateObject())
        {
            string? content = entry.Value.ValueKind == JsonValueKind.Object && entry.Value.TryGetProperty("content", out JsonElement c)
                && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
            if (!string.IsNullOrEmpty(content) && int.TryParse(entry.Name, out int id))
            {
                tokens[content] = id;
            }
        }

        return tokens;
    }
}
