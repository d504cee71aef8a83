using FluentAssertions;
using Sd35.Tests.TestSupport;
using Sd35.Tokenizers;
using Xunit;

namespace Sd35.Tests.Tokenizers;

public sealed class T5TokenizerTests
{
    const int Pad = 0, EndOfSequence = 1, Unknown = 2;

    static T5Tokenizer T5 => TokenizerReference.Tokenizers.T5;

    [Fact]
    public void Empty_prompt_is_end_of_sequence_then_padding()
    {
        T5.Encode("").Should().Equal(EndOfSequence);
        T5.Encode("", 256).Should().Equal([EndOfSequence, .. Enumerable.Repeat(Pad, 255)]);
    }

    [Fact]
    public void Long_prompt_keeps_the_first_255_tokens_and_end_of_sequence()
    {
        ReferenceIds reference = TokenizerReference.ForPromptStartingWith("In the heart of a quiet coastal village");
        int[] all = T5.Encode(reference.Prompt);
        all.Should().HaveCount(387);
        T5.Encode(reference.Prompt, 256).Should().Equal([.. all.Take(255), EndOfSequence]);
    }

    [Fact]
    public void A_run_of_unknown_characters_is_one_unknown_token()
    {
        int[] ids = T5.Encode("\u732b\u732b\u732b \u72ac\u72ac"); // two runs of CJK characters T5 does not know
        ids.Count(id => id == Unknown).Should().Be(2);
        ids.Zip(ids.Skip(1)).Should().NotContain((Unknown, Unknown));
        ids[^1].Should().Be(EndOfSequence);
    }

    [Fact]
    public void Sequence_length_is_chosen_per_call()
    {
        var t5 = new T5Tokenizer(RepoPaths.Fixtures("tokenizers", "t5", "spiece.model"));
        t5.Encode("a photo of a cat", 77).Should().HaveCount(77).And.StartWith(T5.Encode("a photo of a cat"));
        (t5.PadId, t5.EndId, t5.UnknownId).Should().Be((Pad, EndOfSequence, Unknown));
    }
}
