using FluentAssertions;
using Sd35.Pipeline;
using Sd35.Tests.TestSupport;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Sd35.Tests.Pipeline;

/// <summary>diffusers' <c>encode_prompt</c> against the end-to-end goldens, from the stored token ids.</summary>
public class Sd3PromptEncoderTests(ITestOutputHelper log)
{
    public static TheoryData<string> Cases => PipelineCase.Cases;

    [Theory]
    [MemberData(nameof(Cases))]
    public void Prompt_embeddings_from_the_stored_ids_match_the_pipeline(string name)
    {
        var golden = PipelineCase.Load(name);
        var encoder = golden.Encoder();
        using var embeddings = encoder.EncodeIds(golden.Io["clip_l_ids"], golden.Io["clip_g_ids"], golden.Io["t5_ids"]);
        embeddings.PromptEmbeds.shape.Should().Equal(1, Sd3PromptEncoder.ClipTokens + golden.MaxSequenceLength, golden.JointAttentionDim);
        log.WriteLine($"prompt_embeds: {AssertQuality.Fp32(golden.Io["prompt_embeds"], embeddings.PromptEmbeds, $"{name} prompt_embeds")}");
        log.WriteLine($"pooled_prompt_embeds: {AssertQuality.Fp32(golden.Io["pooled_prompt_embeds"], embeddings.PooledPromptEmbeds, $"{name} pooled_prompt_embeds")}");
    }

    [Fact]
    public void Bf16_encoders_stay_close_to_the_fp32_pipeline()
    {
        var golden = PipelineCase.First();
        var encoder = new Sd3PromptEncoder(golden.ClipL(ScalarType.BFloat16), golden.ClipG(ScalarType.BFloat16),
            golden.T5(ScalarType.BFloat16), golden.JointAttentionDim);
        using var embeddings = encoder.EncodeIds(golden.Io["clip_l_ids"], golden.Io["clip_g_ids"], golden.Io["t5_ids"]);
        embeddings.PromptEmbeds.dtype.Should().Be(ScalarType.BFloat16);
        // Bounds as in the T5 bf16 test: the tiny random T5 loses most (see T5EncoderModelTests).
        log.WriteLine($"{AssertQuality.Close(golden.Io["prompt_embeds"], embeddings.PromptEmbeds, 0.99, 0.15, "bf16 prompt_embeds")}");
        log.WriteLine($"{AssertQuality.Close(golden.Io["pooled_prompt_embeds"], embeddings.PooledPromptEmbeds, 0.99, 0.05, "bf16 pooled_prompt_embeds")}");
    }

    [Fact]
    public void Clip_tokens_are_zero_padded_beyond_the_two_clip_widths()
    {
        var golden = PipelineCase.First();
        using var embeddings = golden.Encoder().EncodeIds(golden.Io["clip_l_ids"], golden.Io["clip_g_ids"], golden.Io["t5_ids"]);
        using var padding = embeddings.PromptEmbeds.narrow(1, 0, Sd3PromptEncoder.ClipTokens).narrow(2, 24 + 32, golden.JointAttentionDim - 24 - 32);
        padding.count_nonzero().item<long>().Should().Be(0);
    }

    [Fact]
    public void Without_T5_its_place_holds_77_zero_tokens_as_in_diffusers()
    {
        var golden = PipelineCase.First();
        using var embeddings = golden.Encoder(withT5: false).EncodeIds(golden.Io["clip_l_ids"], golden.Io["clip_g_ids"], t5Ids: null);
        // diffusers' _get_t5_prompt_embeds returns zeros (batch, tokenizer_max_length = 77, joint_attention_dim).
        embeddings.PromptEmbeds.shape.Should().Equal(1, 2 * Sd3PromptEncoder.ClipTokens, golden.JointAttentionDim);
        using var t5Part = embeddings.PromptEmbeds.narrow(1, Sd3PromptEncoder.ClipTokens, Sd3PromptEncoder.ClipTokens);
        t5Part.count_nonzero().item<long>().Should().Be(0);
        using var clipPart = embeddings.PromptEmbeds.narrow(1, 0, Sd3PromptEncoder.ClipTokens);
        using var referenceClip = golden.Io["prompt_embeds"].narrow(1, 0, Sd3PromptEncoder.ClipTokens);
        AssertQuality.Fp32(referenceClip, clipPart, "CLIP tokens without T5");
        AssertQuality.Fp32(golden.Io["pooled_prompt_embeds"], embeddings.PooledPromptEmbeds, "pooled without T5");
    }

    [Fact]
    public void Each_prompt_is_repeated_for_its_images_next_to_each_other()
    {
        var golden = PipelineCase.First();
        // Two different prompts: the stored one and its ids reversed.
        Tensor TwoRows(string key) => cat([golden.Io[key], golden.Io[key].flip(1)]);
        using var clipL = TwoRows("clip_l_ids");
        using var clipG = TwoRows("clip_g_ids");
        using var t5 = TwoRows("t5_ids");
        var encoder = golden.Encoder();
        using var single = encoder.EncodeIds(clipL, clipG, t5);
        using var repeated = encoder.EncodeIds(clipL, clipG, t5, numImagesPerPrompt: 3);
        repeated.PromptEmbeds.shape[0].Should().Be(6);
        using var expected = single.PromptEmbeds.repeat_interleave(3, 0);
        repeated.PromptEmbeds.Equals(expected).Should().BeTrue();
        using var expectedPooled = single.PooledPromptEmbeds.repeat_interleave(3, 0);
        repeated.PooledPromptEmbeds.Equals(expectedPooled).Should().BeTrue();
    }

    [Fact]
    public void Clip_skip_moves_to_an_earlier_hidden_state()
    {
        var golden = PipelineCase.First();
        var encoder = golden.Encoder();
        using var skipped = encoder.EncodeIds(golden.Io["clip_l_ids"], golden.Io["clip_g_ids"], golden.Io["t5_ids"], clipSkip: 1);
        using var clipL = golden.ClipL();
        using var output = clipL.forward(golden.Io["clip_l_ids"]);
        // hidden_states[-(clip_skip + 2)] = hidden_states[-3]
        using var clipLPart = skipped.PromptEmbeds.narrow(1, 0, Sd3PromptEncoder.ClipTokens).narrow(2, 0, clipL.Config.HiddenSize);
        clipLPart.Equals(output.HiddenState(-3)).Should().BeTrue();
    }

    [Fact]
    public void Mismatched_widths_and_missing_ids_are_reported()
    {
        var golden = PipelineCase.First();
        var wrongWidth = () => new Sd3PromptEncoder(golden.ClipL(), golden.ClipG(), golden.T5(), golden.JointAttentionDim + 8);
        wrongWidth.Should().Throw<ArgumentException>().WithMessage("*d_model*joint_attention_dim*");
        var encoder = golden.Encoder();
        var noT5Ids = () => encoder.EncodeIds(golden.Io["clip_l_ids"], golden.Io["clip_g_ids"], null);
        noT5Ids.Should().Throw<ArgumentNullException>();
        var noTokenizers = () => encoder.Encode(Sd3Prompt.Single("a cat"));
        noTokenizers.Should().Throw<InvalidOperationException>().WithMessage("*without tokenizers*");
    }
}
