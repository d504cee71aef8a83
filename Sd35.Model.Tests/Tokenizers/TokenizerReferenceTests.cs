using Sd35.Tokenizers;
using FluentAssertions;
using Xunit;

namespace Sd35.Tests.Tokenizers;

/// <summary>
/// Every prompt of fixtures/tokenizers/prompts.txt against the reference ids: the padded inputs SD3's pipeline
/// builds for each encoder (<c>hf_*</c>), and the unpadded CLIP and T5 ids.
/// </summary>
public sealed class TokenizerReferenceTests
{
    [Fact]
    public void Prompts_file_and_reference_ids_list_the_same_prompts()
    {
        TokenizerReference.Prompts.Should().HaveCount(34)
            .And.Equal(TokenizerReference.Ids.Select(r => r.Prompt));
    }

    [Theory]
    [MemberData(nameof(TokenizerReference.PromptIndices), MemberType = typeof(TokenizerReference))]
    public void ClipL_padded_ids_match_the_pipeline(int index) =>
        Check(index, r => r.HfClipL77, p => TokenizerReference.Tokenizers.ClipL.Encode(p, ClipTokenizer.ContextLength), "CLIP-L padded ids");

    [Theory]
    [MemberData(nameof(TokenizerReference.PromptIndices), MemberType = typeof(TokenizerReference))]
    public void ClipG_padded_ids_match_the_pipeline(int index) =>
        Check(index, r => r.HfClipG77, p => TokenizerReference.Tokenizers.ClipG.Encode(p, ClipTokenizer.ContextLength), "CLIP-G padded ids");

    [Theory]
    [MemberData(nameof(TokenizerReference.PromptIndices), MemberType = typeof(TokenizerReference))]
    public void T5_padded_ids_match_the_pipeline(int index) =>
        Check(index, r => r.HfT5_256, p => TokenizerReference.Tokenizers.T5.Encode(p, 256), "T5 padded ids");

    // CLIP-L has no added token besides its markers, so its unpadded ids are plain CLIP's.
    [Theory]
    [MemberData(nameof(TokenizerReference.PromptIndices), MemberType = typeof(TokenizerReference))]
    public void Clip_unpadded_ids_match_the_reference(int index) =>
        Check(index, r => r.ClipIds, p => TokenizerReference.Tokenizers.ClipL.Encode(p), "CLIP unpadded ids");

    [Theory]
    [MemberData(nameof(TokenizerReference.PromptIndices), MemberType = typeof(TokenizerReference))]
    public void T5_unpadded_ids_match_the_reference(int index) =>
        Check(index, r => r.T5Ids, p => TokenizerReference.Tokenizers.T5.Encode(p), "T5 unpadded ids");

    static void Check(int index, Func<ReferenceIds, int[]> expected, Func<string, int[]> encode, string what)
    {
        string prompt = TokenizerReference.Prompts[index];
        IdAssert.Equal(expected(TokenizerReference.Ids[index]), encode(prompt), prompt, $"{what} (prompt #{index})");
    }
}
