using FluentAssertions;
using Sd35.Tokenizers;
using Xunit;

namespace Sd35.Model.Tests.Tokenizers;

/// <summary>
/// The hand-written parts of CLIP's text pipeline against the Python they mirror. Expected values were printed
/// by ftfy 6.3.1 (rspeer/python-ftfy@74dd0452, the version behind the reference ids), CPython 3.11's
/// <c>str.lower()</c>, and the python3-regex module running CLIP's pattern.
/// </summary>
public sealed class ClipTextCleanupTests
{
    [Theory]
    [InlineData("\u201cCurly\u201d \u2018quotes\u2019 \u02bcx \u201bx\u201f", "\"Curly\" 'quotes' 'x 'x\"")]
    [InlineData("\uff26\uff35\uff2c\uff2c\u3000\uff57\uff49\uff44\uff54\uff48\uff01 \uff76\uff9e", "FULL width! \u30ac")]
    [InlineData("\ufb01ne \ufb02ower \ufb03 \ufb05 \u01c4", "fine flower ffi \u017ft D\u017d")]
    [InlineData("Tom &amp; Jerry &hellip; P&EACUTE;REZ BUNDESSTRA&SZLIG;E &notin; &nTILDE;",
        "Tom & Jerry \u2026 P\u00c9REZ BUNDESSTRASSE \u2209 &nTILDE;")]
    [InlineData("a &amp; b <i>x</i> &amp;", "a &amp; b <i>x</i> &amp;")] // a '<' means HTML: entities stay
    [InlineData("line\r\nnext\rthird\u2028fourth", "line\nnext\nthird\nfourth")]
    [InlineData("\u001b[36;44mblue\u001b[0m", "blue")]
    [InlineData("x\u0000y\ufeffz\u200bw", "xyz\u200bw")]
    [InlineData("cafe\u0301", "caf\u00e9")]
    [InlineData("\u0093quoted\u0094 \u0080 \u0081", "\"quoted\" \u20ac \u0081")]
    [InlineData("\u0085", "\u2026")]
    public void FixText_matches_ftfy(string input, string expected) =>
        FtfyTextFixer.FixText(input).Should().Be(expected);

    [Theory]
    [InlineData("\u039f\u0394\u039f\u03a3 \u03a3\u039f\u03a6\u039f\u03a3 \u03a3", "\u03bf\u03b4\u03bf\u03c2 \u03c3\u03bf\u03c6\u03bf\u03c2 \u03c3")]
    [InlineData("\u0391\u03a3'", "\u03b1\u03c2'")]
    [InlineData("\u0391'\u03a3", "\u03b1'\u03c2")]
    [InlineData("\u0391\u03a3\u0301\u0391", "\u03b1\u03c3\u0301\u03b1")]
    [InlineData("\u0130stanbul", "i\u0307stanbul")]
    [InlineData("\u1e9e STRASSE", "\u00df strasse")]
    [InlineData("\u01c5", "\u01c6")]
    public void Lower_case_matches_python(string input, string expected) =>
        PythonLowerCase.Apply(input).Should().Be(expected);

    [Theory]
    [InlineData("a\U0001D400b \U0001D7CF\U0001D7D0 x\U0001D400!", new[] { "a\U0001D400b", "\U0001D7CF", "\U0001D7D0", "x\U0001D400", "!" })]
    [InlineData("don't it'\u017f ok!'s", new[] { "don", "'t", "it", "'\u017f", "ok", "!'", "s" })]
    [InlineData("a<|endoftext|>b !!<|endoftext|>", new[] { "a", "<|endoftext|>", "b", "!!<|", "endoftext", "|>" })]
    [InlineData("1234 ab12 \u00bd", new[] { "1", "2", "3", "4", "ab", "1", "2", "\u00bd" })]
    [InlineData("\U0001F600\U0001F431 ok", new[] { "\U0001F600\U0001F431", "ok" })]
    public void PreTokenizer_matches_the_python_regex(string input, string[] expected) =>
        ClipPreTokenizer.Instance.PreTokenize(input)
            .Select(piece => input.Substring(piece.Offset, piece.Length))
            .Should().Equal(expected);

    [Fact]
    public void Normalizer_cleans_collapses_whitespace_strips_and_lower_cases() =>
        ClipTextNormalizer.Instance.Normalize("  \u201cHELLO\u201d\t\n \uff37orld\u00a0 ").Should().Be("\"hello\" world");
}
