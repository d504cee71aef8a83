using FluentAssertions;
using Sd35.Pipeline;
using Sd35.Tests.TestSupport;
using Sd35.Tokenizers;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Sd35.Tests.Pipeline;

/// <summary>
/// diffusers' <c>encode_prompt</c> end to end, from the case's prompt and negative prompt through the project's
/// tokenizers and the tiny encoders: the ids must equal the pipeline's exactly and both sides' embeddings match.
/// </summary>
public class Sd3PromptEncoderFromTextTests(ITestOutputHelper log)
{
    public static TheoryData<string> Cases => PipelineCase.Cases;

    static TokenizerSet Tokenizers() => TokenizerSet.Default(RepoPaths.Fixtures("tokenizers"));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Prompt_text_gives_the_pipeline_ids(string name)
    {
        var golden = PipelineCase.Load(name);
        var encoder = golden.Encoder(tokenizers: Tokenizers());
        var (clipL, clipG, t5) = encoder.Tokenize(Sd3Prompt.Single(golden.Prompt).Positive(), golden.MaxSequenceLength);
        using (clipL)
        using (clipG)
        using (t5)
        {
            clipL.Equals(golden.Io["clip_l_ids"]).Should().BeTrue("CLIP-L ids");
            clipG.Equals(golden.Io["clip_g_ids"]).Should().BeTrue("CLIP-G ids");
            t5!.Equals(golden.Io["t5_ids"]).Should().BeTrue("T5 ids");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Prompt_and_negative_prompt_text_give_the_pipeline_embeddings(string name)
    {
        var golden = PipelineCase.Load(name);
        var encoder = golden.Encoder(tokenizers: Tokenizers());
        using var encoded = encoder.Encode(Sd3Prompt.Single(golden.Prompt, golden.NegativePrompt), maxSequenceLength: golden.MaxSequenceLength);
        var sides = new (string Key, Tensor Actual)[]
        {
            ("prompt_embeds", encoded.Positive.PromptEmbeds),
            ("pooled_prompt_embeds", encoded.Positive.PooledPromptEmbeds),
            ("negative_prompt_embeds", encoded.Negative!.PromptEmbeds),
            ("negative_pooled_prompt_embeds", encoded.Negative.PooledPromptEmbeds),
        };
        foreach (var (key, actual) in sides)
            log.WriteLine($"{key}: {AssertQuality.Fp32(golden.Io[key], actual, $"{name} {key}")}");
    }

    [Fact]
    public void Without_guidance_there_is_no_negative_side()
    {
        var golden = PipelineCase.First();
        using var encoded = golden.Encoder(tokenizers: Tokenizers())
            .Encode(Sd3Prompt.Single(golden.Prompt), classifierFreeGuidance: false, maxSequenceLength: golden.MaxSequenceLength);
        encoded.Negative.Should().BeNull();
        AssertQuality.Fp32(golden.Io["prompt_embeds"], encoded.Positive.PromptEmbeds, "prompt_embeds without guidance");
    }
}
