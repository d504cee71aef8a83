using System.Globalization;
using System.Text;

namespace Sd35.Tokenizers;

/// <summary>
/// Python's <c>str.lower()</c>, which CLIP applies to every prompt. .NET's <c>ToLowerInvariant</c> differs in
/// the two places Python uses Unicode's full (SpecialCasing) rules instead of the per-character mapping:
/// U+0130 'İ' becomes "i̇" (i + U+0307 combining dot), and a capital sigma becomes final 'ς' at the end of a
/// word (the Final_Sigma condition). Everything else is the simple per-character mapping in both runtimes.
/// </summary>
static class PythonLowerCase
{
    const int CapitalSigma = 0x03A3;
    const int CapitalIWithDot = 0x0130;

    public static string Apply(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Rune[] runes = text.EnumerateRunes().ToArray();
        var lowered = new StringBuilder(text.Length);
        for (int i = 0; i < runes.Length; i++)
        {
            switch (runes[i].Value)
            {
                case CapitalIWithDot:
                    lowered.Append("i\u0307");
                    break;
                case CapitalSigma:
                    lowered.Append(IsFinalSigma(runes, i) ? 'ς' : 'σ');
                    break;
                default:
                    lowered.Append(Rune.ToLowerInvariant(runes[i]).ToString());
                    break;
            }
        }

        return lowered.ToString();
    }

    // Unicode's Final_Sigma context, as CPython checks it: a cased letter before the sigma and no cased letter
    // after it, both looking past case-ignorable characters (apostrophes, combining marks, ...).
    static bool IsFinalSigma(Rune[] runes, int sigmaIndex)
    {
        int before = sigmaIndex - 1;
        while (before >= 0 && IsCaseIgnorable(runes[before]))
        {
            before--;
        }

        if (before < 0 || !IsCased(runes[before]))
        {
            return false;
        }

        int after = sigmaIndex + 1;
        while (after < runes.Length && IsCaseIgnorable(runes[after]))
        {
            after++;
        }

        return after == runes.Length || !IsCased(runes[after]);
    }

    // Unicode's Cased property. .NET has no API for it: letters with a case category, anything with a case
    // mapping (circled letters, Roman numerals), and the few Other_Lowercase/Other_Uppercase characters that
    // have neither. Modifier letters in Other_Lowercase are left out on purpose: they are also case-ignorable,
    // and the sigma rule skips case-ignorable characters before it asks whether one is cased.
    internal static bool IsCased(Rune rune)
    {
        UnicodeCategory category = Rune.GetUnicodeCategory(rune);
        if (category is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
            or UnicodeCategory.TitlecaseLetter)
        {
            return true;
        }

        if (Rune.ToLowerInvariant(rune) != rune || Rune.ToUpperInvariant(rune) != rune)
        {
            return true;
        }

        int value = rune.Value;
        return value is 0x00AA or 0x00BA // ª º
            or (>= 0x1F130 and <= 0x1F149) // squared Latin capitals
            or (>= 0x1F150 and <= 0x1F169) // negative circled Latin capitals
            or (>= 0x1F170 and <= 0x1F189); // negative squared Latin capitals
    }

    // Unicode's Case_Ignorable property: marks, format characters, modifier letters and symbols, and the
    // Word_Break MidLetter / MidNumLet / Single_Quote characters (apostrophes, periods, colons, middle dots).
    internal static bool IsCaseIgnorable(Rune rune)
    {
        UnicodeCategory category = Rune.GetUnicodeCategory(rune);
        if (category is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol)
        {
            return true;
        }

        return rune.Value is 0x0027 or 0x002E or 0x003A or 0x00B7 or 0x0387 or 0x055F or 0x05F4
            or 0x2018 or 0x2019 or 0x2024 or 0x2027 or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A;
    }
}
