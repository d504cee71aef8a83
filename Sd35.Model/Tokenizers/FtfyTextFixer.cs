using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace Sd35.Tokenizers;

/// <summary>
/// The character-level part of ftfy 6's <c>fix_text</c> with its default settings, which CLIP's tokenizer runs
/// on every prompt before BPE (ftfy changes which tokens a prompt gets, e.g. curly quotes and full-width
/// letters). Each step below names the ftfy fixer it mirrors; the steps run in ftfy's order and repeat until
/// the text stops changing, as <c>fix_and_explain</c> does.
/// Left out on purpose: ftfy's mojibake repair (<c>fix_encoding</c>), a statistical heuristic for text decoded
/// with the wrong code page ("cafÃ©" for "café"). Ordinary prompts never trigger it, but odd mixes of symbols and
/// accented capitals can (ftfy reads "ﬁÉ" as Mac-Roman mojibake for "ރ"); there this port keeps the text.
/// </summary>
static partial class FtfyTextFixer
{
    public static string FixText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        // ftfy fixes line by line. Its "auto" HTML unescaping turns itself off for the rest of the text at the
        // first line containing '<', because such text is probably HTML whose entities are meant literally.
        var fixedText = new StringBuilder(text.Length);
        bool unescapeHtml = true;
        int start = 0;
        while (start < text.Length)
        {
            int lineEnd = text.IndexOf('\n', start);
            int end = lineEnd < 0 ? text.Length : lineEnd + 1;
            string line = text[start..end];
            unescapeHtml &= !line.Contains('<');
            fixedText.Append(FixSegment(line, unescapeHtml));
            start = end;
        }

        return fixedText.ToString();
    }

    static string FixSegment(string text, bool unescapeHtml)
    {
        while (true)
        {
            string original = text;
            if (unescapeHtml)
            {
                text = UnescapeHtml(text);
            }

            text = Translate(text, FixC1Control);
            text = Translate(text, LatinLigature);
            text = Translate(text, StandardWidth);
            text = UncurlQuotes(text);
            text = FixLineBreaks(text);
            text = TerminalEscape().Replace(text, "");
            text = Translate(text, ch => IsRemovedControl(ch) ? "" : null);
            text = text.Normalize(NormalizationForm.FormC);
            if (text == original)
            {
                return text;
            }
        }
    }

    // unescape_html: only well-formed entities ending in ';' (ftfy leaves "this&not that" alone), and an
    // all-caps spelling of a lower-case entity decodes to the upper-cased character (P&EACUTE;REZ -> PÉREZ).
    // .NET knows the HTML 4 entity names; ftfy knows HTML 5's longer list, whose extra names stay as typed here.
    static string UnescapeHtml(string text) =>
        text.Contains('&') ? HtmlEntity().Replace(text, m => DecodeEntity(m.Value)) : text;

    static string DecodeEntity(string entity)
    {
        string decoded = WebUtility.HtmlDecode(entity);
        if (decoded != entity || entity.StartsWith("&#", StringComparison.Ordinal)
            || entity != entity.ToUpperInvariant())
        {
            return decoded;
        }

        string fromLowerCase = WebUtility.HtmlDecode(entity.ToLowerInvariant());
        // Python's str.upper() spells the one HTML 4 letter without a capital, ß, as "SS".
        return fromLowerCase == entity.ToLowerInvariant() ? entity
            : fromLowerCase == "ß" ? "SS" : fromLowerCase.ToUpperInvariant();
    }

    // fix_c1_controls: U+0080..U+009F are almost always Windows-1252 bytes that were decoded as Latin-1. The
    // five bytes Windows-1252 leaves undefined stay as they are (ftfy's "sloppy" codec).
    const string Windows1252C1 =
        "\u20AC\u0081\u201A\u0192\u201E\u2026\u2020\u2021\u02C6\u2030\u0160\u2039\u0152\u008D\u017D\u008F" +
        "\u0090\u2018\u2019\u201C\u201D\u2022\u2013\u2014\u02DC\u2122\u0161\u203A\u0153\u009D\u017E\u0178";

    static string? FixC1Control(char ch) =>
        ch is >= '\u0080' and <= '\u009F' ? Windows1252C1[ch - 0x80].ToString() : null;

    // fix_latin_ligatures: only Latin ligatures, not NFKC in general.
    static string? LatinLigature(char ch) => ch switch
    {
        'Ĳ' => "IJ", 'ĳ' => "ij", 'ŉ' => "ʼn",
        'Ǳ' => "DZ", 'ǲ' => "Dz", 'ǳ' => "dz", 'Ǆ' => "DŽ", 'ǅ' => "Dž", 'ǆ' => "dž",
        'Ǉ' => "LJ", 'ǈ' => "Lj", 'ǉ' => "lj", 'Ǌ' => "NJ", 'ǋ' => "Nj", 'ǌ' => "nj",
        'ﬀ' => "ff", 'ﬁ' => "fi", 'ﬂ' => "fl", 'ﬃ' => "ffi", 'ﬄ' => "ffl", 'ﬅ' => "ſt", 'ﬆ' => "st",
        _ => null,
    };

    // fix_character_width: NFKC, but only for the half-/full-width block U+FF01..U+FFEF, plus the ideographic
    // space U+3000 which becomes an ordinary space.
    static string? StandardWidth(char ch)
    {
        if (ch == '\u3000')
        {
            return " ";
        }

        if (ch is < '\uFF01' or > '\uFFEF')
        {
            return null;
        }

        string folded = ch.ToString().Normalize(NormalizationForm.FormKC);
        return folded == ch.ToString() ? null : folded;
    }

    // uncurl_quotes: U+02BC and U+2018..U+201B become ', U+201C..U+201F become ".
    static string UncurlQuotes(string text) => Translate(text, ch => ch switch
    {
        '\u02BC' or (>= '\u2018' and <= '\u201B') => "'",
        >= '\u201C' and <= '\u201F' => "\"",
        _ => null,
    });

    // fix_line_breaks: every line-break convention becomes '\n'.
    static string FixLineBreaks(string text) => text
        .Replace("\r\n", "\n")
        .Replace('\r', '\n')
        .Replace('\u2028', '\n')
        .Replace('\u2029', '\n')
        .Replace('\u0085', '\n');

    // remove_control_chars: invisible controls, but not the ones that produce whitespace (\t \n \f \r), not
    // joiners/direction marks, and not C1 controls (handled above).
    static bool IsRemovedControl(char ch) =>
        ch is <= '\u0008' or '\u000B' or (>= '\u000E' and <= '\u001F') or '\u007F'
            or (>= '\u206A' and <= '\u206F') or '\uFEFF' or (>= '\uFFF9' and <= '\uFFFC');

    // Replaces each char for which map returns non-null; surrogate halves are never mapped, so pairs survive.
    static string Translate(string text, Func<char, string?> map)
    {
        StringBuilder? result = null;
        for (int i = 0; i < text.Length; i++)
        {
            string? replacement = map(text[i]);
            if (replacement is null)
            {
                result?.Append(text[i]);
                continue;
            }

            result ??= new StringBuilder(text.Length).Append(text, 0, i);
            result.Append(replacement);
        }

        return result?.ToString() ?? text;
    }

    [GeneratedRegex(@"&#?[0-9A-Za-z]{1,24};")]
    private static partial Regex HtmlEntity();

    // remove_terminal_escapes: ANSI colour codes.
    [GeneratedRegex(@"\x1B\[(?:\d|;)*[a-zA-Z]")]
    private static partial Regex TerminalEscape();
}
