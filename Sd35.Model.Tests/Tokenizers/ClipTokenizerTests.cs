using FluentAssertions;
using Sd35.Tokenizers;
using Xunit;

namespace Sd35.Tests.Tokenizers;

public sealed class ClipTokenizerTests
{
    const int Bos = 49406, Eos = 49407, ExclamationMark = 256; // "!</w>"

    static ClipTokenizer ClipL => TokenizerReference.Tokenizers.ClipL;

    static ClipTokenizer ClipG => TokenizerReference.Tokenizers.ClipG;

    [Fact]
    public void Empty_prompt_is_the_two_markers_then_padding()
    {
        ClipL.Encode("").Should().Equal(Bos, Eos);
        ClipL.Encode("", ClipTokenizer.ContextLength).Should().Equal([Bos, Eos, .. Enumerable.Repeat(Eos, 75)]);
        ClipG.Encode("", ClipTokenizer.ContextLength).Should().Equal([Bos, Eos, .. Enumerable.Repeat(0, 75)]);
    }

    [Fact]
    public void Long_prompt_keeps_bos_the_first_75_tokens_and_eos()
    {
        ReferenceIds reference = TokenizerReference.ForPromptStartingWith("A breathtaking panoramic view");
        int[] all = ClipL.Encode(reference.Prompt);
        all.Should().HaveCount(89);

        int[] padded = ClipL.Encode(reference.Prompt, ClipTokenizer.ContextLength);
        padded.Should().Equal([.. all.Take(76), Eos]);
        ClipG.Encode(reference.Prompt, ClipTokenizer.ContextLength).Should().Equal(padded, "the prompt has no '!'");
    }

    [Fact]
    public void ClipG_encodes_every_exclamation_mark_as_its_pad_id()
    {
        int art = ClipL.Encode("art")[1];
        ClipG.Encode("art!!!").Should().Equal(Bos, art, 0, 0, 0, Eos);

        int[] hiThere = ClipL.Encode("hi there");
        ClipG.Encode("hi! there").Should().Equal(Bos, hiThere[1], 0, hiThere[2], Eos);

        ClipL.Encode("art!!!").Should().NotContain(0).And.HaveCountLessThan(6, "CLIP-L BPE-merges '!!!'");
    }

    [Fact]
    public void Added_tokens_are_matched_before_clean_up_as_in_transformers()
    {
        // A full-width '！' only becomes '!' in ftfy's clean-up, after the split on added tokens, so it is BPE'd.
        ClipG.Encode("\uff01").Should().Equal(Bos, ExclamationMark, Eos);
        ClipG.AddedTokens.Should().Contain(new KeyValuePair<string, int>("!", 0));
    }

    [Fact]
    public void End_of_text_typed_in_a_prompt_is_the_marker_in_any_case()
    {
        int[] expected = [Bos, 320, Eos, 320, Eos]; // "a</w>" = 320
        ClipL.Encode("a<|endoftext|>a").Should().Equal(expected);
        ClipL.Encode("A<|ENDOFTEXT|>A").Should().Equal(expected, "CLIP lower-cases before its regex sees the marker");
    }

    [Fact]
    public void Markers_and_pad_ids_come_from_the_vocabulary()
    {
        (ClipL.BeginId, ClipL.EndId, ClipL.PadId).Should().Be((Bos, Eos, Eos));
        (ClipG.BeginId, ClipG.EndId, ClipG.PadId).Should().Be((Bos, Eos, 0));
    }
}
