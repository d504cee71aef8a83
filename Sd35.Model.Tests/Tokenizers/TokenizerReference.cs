using System.Text.Json;
using Sd35.Tests.TestSupport;
using Sd35.Tokenizers;

namespace Sd35.Tests.Tokenizers;

/// <summary>
/// The reference ids in <c>fixtures/tokenizers</c> (see its README for how they were produced), and one
/// shared set of tokenizers built from the fixture copies of the tokenizer files.
/// </summary>
public static class TokenizerReference
{
    static readonly Lazy<IReadOnlyList<string>> LazyPrompts = new(LoadPrompts);
    static readonly Lazy<IReadOnlyList<ReferenceIds>> LazyIds = new(LoadIds);
    static readonly Lazy<TokenizerSet> LazyTokenizers =
        new(() => TokenizerSet.Default(RepoPaths.Fixtures("tokenizers")));

    /// <summary>prompts.txt: one JSON string literal per line.</summary>
    public static IReadOnlyList<string> Prompts => LazyPrompts.Value;

    public static IReadOnlyList<ReferenceIds> Ids => LazyIds.Value;

    public static TokenizerSet Tokenizers => LazyTokenizers.Value;

    public static IEnumerable<object[]> PromptIndices() => Prompts.Select((_, index) => new object[] { index });

    /// <summary>The reference entry whose prompt is the prompt's text, e.g. to find the long prompts.</summary>
    public static ReferenceIds ForPromptStartingWith(string start) =>
        Ids.Single(r => r.Prompt.StartsWith(start, StringComparison.Ordinal));

    static List<string> LoadPrompts() =>
        File.ReadLines(RepoPaths.Fixtures("tokenizers", "prompts.txt"))
            .Where(line => line.Length > 0)
            .Select(line => JsonSerializer.Deserialize<string>(line)
                ?? throw new InvalidDataException($"prompts.txt line is not a JSON string: {line}"))
            .ToList();

    static List<ReferenceIds> LoadIds()
    {
        using FileStream stream = File.OpenRead(RepoPaths.Fixtures("tokenizers", "reference_ids.json"));
        using JsonDocument document = JsonDocument.Parse(stream);
        return document.RootElement.GetProperty("prompts").EnumerateArray()
            .Select(entry => new ReferenceIds(
                entry.GetProperty("prompt").GetString()!,
                Ints(entry, "clip_ids"),
                Ints(entry, "t5_ids"),
                Ints(entry, "hf_clip_l_input_ids_77"),
                Ints(entry, "hf_clip_g_input_ids_77"),
                Ints(entry, "hf_t5_input_ids_256")))
            .ToList();
    }

    static int[] Ints(JsonElement entry, string name) =>
        entry.GetProperty(name).EnumerateArray().Select(e => e.GetInt32()).ToArray();
}

/// <summary>One prompt's reference ids; the <c>Hf</c> ones are what SD3's pipeline feeds its encoders.</summary>
public sealed record ReferenceIds(
    string Prompt, int[] ClipIds, int[] T5Ids, int[] HfClipL77, int[] HfClipG77, int[] HfT5_256);
