using FluentAssertions;
using Sd35.Tests.TestSupport;
using Sd35.Tokenizers;
using Xunit;

namespace Sd35.Model.Tests.Tokenizers;

/// <summary>The small generic pieces the tokenizers are built from.</summary>
public sealed class TokenizerBuildingBlockTests
{
    [Fact]
    public void FitToLength_pads_truncates_keeping_the_last_id_or_copies()
    {
        TokenSequence.FitToLength([7, 8, 9], 5, padId: 0).Should().Equal(7, 8, 9, 0, 0);
        TokenSequence.FitToLength([7, 8, 9, 10, 11, 12], 4, padId: 0).Should().Equal(7, 8, 9, 12);
        TokenSequence.FitToLength([7, 8, 9], 3, padId: 0).Should().Equal(7, 8, 9);
    }

    [Fact]
    public void Splitter_prefers_the_longest_added_token_and_keeps_text_between()
    {
        var splitter = new AddedTokenSplitter(new Dictionary<string, int> { ["!"] = 0, ["!!x"] = 5 });
        splitter.Split("a!!xb!").Should().Equal(("a", null), ("!!x", 5), ("b", null), ("!", 0));
        splitter.Split("").Should().BeEmpty();
    }

    [Fact]
    public void Varint_editor_rewrites_a_nested_field_and_its_lengths()
    {
        // message { 1: "ab", 2: { 41: -1, 42: 1 }, 3: 7 }; 41 and 42 take two-byte tags.
        byte[] bosMinusOne = [0xC8, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        byte[] eosOne = [0xD0, 0x02, 0x01];
        byte[] message = [0x0A, 0x02, (byte)'a', (byte)'b', 0x12, 15, .. bosMinusOne, .. eosOne, 0x18, 0x07];

        byte[] patched = ProtobufVarintEditor.UpdateVarint(message, [2, 41], old => old < 0 ? 0 : old);

        patched.Should().Equal([0x0A, 0x02, (byte)'a', (byte)'b', 0x12, 6, 0xC8, 0x02, 0x00, .. eosOne, 0x18, 0x07]);
        ProtobufVarintEditor.UpdateVarint(message, [2, 44], _ => 5).Should().Equal(message, "an absent field keeps its default");
    }

    [Fact]
    public void Varint_editor_changes_only_the_bos_id_of_the_t5_model()
    {
        byte[] model = File.ReadAllBytes(RepoPaths.Fixtures("tokenizers", "t5", "spiece.model"));
        long? seen = null;
        byte[] patched = ProtobufVarintEditor.UpdateVarint(model, [2, 41], old => (seen = old).Value < 0 ? 0 : old);

        seen.Should().Be(-1, "T5's SentencePiece model declares no BOS");
        patched.Length.Should().Be(model.Length - 9, "a 10-byte varint -1 became a 1-byte 0");
        ProtobufVarintEditor.UpdateVarint(patched, [2, 41], _ => -1).Should().Equal(model);
    }
}
