using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace Sd35.Tokenizers;

/// <summary>
/// CLIP's pre-tokenization regex, case-insensitive:
/// <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>.
/// Written as a scanner rather than handed to .NET's Regex because .NET matches UTF-16 code units, so a letter
/// or digit outside the BMP (𝐀, 𝟏, CJK extension B) would not count as \p{L} / \p{N} and would be grouped with
/// punctuation; Python's regex module matches code points. Whitespace separates pieces and is dropped.
/// Checked against Python's regex module for every assigned code point.
/// </summary>
sealed class ClipPreTokenizer : PreTokenizer
{
    static readonly string[] SpecialPieces = ["<|startoftext|>", "<|endoftext|>"];
    static readonly string[] Contractions = ["s", "t", "re", "ve", "m", "ll", "d"];

    public static ClipPreTokenizer Instance { get; } = new();

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) =>
        Split(text ?? throw new ArgumentNullException(nameof(text)));

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) =>
        Split(text.ToString());

    static List<(int Offset, int Length)> Split(string text)
    {
        var pieces = new List<(int Offset, int Length)>();
        int position = 0;
        while (position < text.Length)
        {
            int length = MatchAt(text, position);
            if (length > 0)
            {
                pieces.Add((position, length));
                position += length;
            }
            else
            {
                // Whitespace, or a character no alternative matches: skipped, as re.findall skips it.
                position += RuneAt(text, position).Utf16SequenceLength;
            }
        }

        return pieces;
    }

    // Length of the piece the regex matches at position (alternatives tried in order), or 0 if none does.
    static int MatchAt(string text, int position)
    {
        foreach (string special in SpecialPieces)
        {
            if (string.Compare(text, position, special, 0, special.Length, StringComparison.OrdinalIgnoreCase) == 0)
            {
                return special.Length;
            }
        }

        if (text[position] == '\'')
        {
            foreach (string suffix in Contractions)
            {
                if (MatchesIgnoringCase(text, position + 1, suffix))
                {
                    return 1 + suffix.Length;
                }
            }
        }

        CharClass first = Classify(RuneAt(text, position));
        return first switch
        {
            CharClass.Skipped => 0,
            CharClass.Number => RuneAt(text, position).Utf16SequenceLength,
            _ => RunLength(text, position, first),
        };
    }

    static int RunLength(string text, int position, CharClass charClass)
    {
        int end = position;
        while (end < text.Length)
        {
            Rune rune = RuneAt(text, end);
            if (Classify(rune) != charClass)
            {
                break;
            }

            end += rune.Utf16SequenceLength;
        }

        return end - position;
    }

    // ASCII case-insensitive, plus 'ſ' (U+017F), which Python's IGNORECASE folds to 's'.
    static bool MatchesIgnoringCase(string text, int position, string lowerAscii)
    {
        if (position + lowerAscii.Length > text.Length)
        {
            return false;
        }

        for (int i = 0; i < lowerAscii.Length; i++)
        {
            char ch = text[position + i];
            bool same = char.ToLowerInvariant(ch) == lowerAscii[i] && ch < 0x80
                || ch == 'ſ' && lowerAscii[i] == 's';
            if (!same)
            {
                return false;
            }
        }

        return true;
    }

    enum CharClass { Skipped, Letter, Number, Other }

    static CharClass Classify(Rune rune)
    {
        // U+0345 (combining ypogegrammeni) is not a letter but case-folds to 'ι'; under IGNORECASE Python's
        // regex lets neither the letter class nor the negated class match it, so it is skipped like a space.
        if (Rune.IsWhiteSpace(rune) || rune.Value == 0x0345)
        {
            return CharClass.Skipped;
        }

        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharClass.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber
                or UnicodeCategory.OtherNumber => CharClass.Number,
            _ => CharClass.Other,
        };
    }

    // A lone surrogate decodes as U+FFFD (a symbol) occupying one char, so offsets stay in step with the text.
    static Rune RuneAt(string text, int position)
    {
        Rune.DecodeFromUtf16(text.AsSpan(position), out Rune rune, out _);
        return rune;
    }
}
