using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Sd35.Tokenizers;

/// <summary>
/// The clean-up CLIP's tokenizer applies to text before pre-tokenization, in its order: ftfy's
/// <c>fix_text</c>, whitespace runs collapsed to one space, outer spaces stripped, then Python's
/// <c>str.lower()</c>.
/// </summary>
sealed partial class ClipTextNormalizer : Normalizer
{
    public static ClipTextNormalizer Instance { get; } = new();

    public override string Normalize(string original)
    {
        ArgumentNullException.ThrowIfNull(original);
        string cleaned = Whitespace().Replace(FtfyTextFixer.FixText(original), " ").Trim(' ');
        return PythonLowerCase.Apply(cleaned);
    }

    public override string Normalize(ReadOnlySpan<char> original) => Normalize(original.ToString());

    // .NET's \s and Python's regex \s are the same set: Unicode White_Space.
    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
