using FluentAssertions;
using Sd35.Pipeline;

namespace Sd35.Tests.Pipeline;

/// <summary>diffusers' defaults for the per-encoder and negative prompts.</summary>
public class Sd3PromptTests
{
    [Fact]
    public void Second_and_third_prompts_default_to_the_prompt()
    {
        var (l, g, t5) = Sd3Prompt.Single("a cat", prompt2: "", prompt3: "a dog").Positive();
        l.Should().Equal("a cat");
        g.Should().Equal("a cat");
        t5.Should().Equal("a dog");
    }

    [Fact]
    public void Negative_prompts_default_to_empty_text_and_then_to_the_negative_prompt()
    {
        var defaults = Sd3Prompt.Single("a cat").Negative();
        new[] { defaults.ClipL, defaults.ClipG, defaults.T5 }.Should().AllSatisfy(texts => texts.Should().Equal(""));
        var (l, g, t5) = Sd3Prompt.Single("a cat", negativePrompt: "blurry", negativePrompt3: "dark").Negative();
        l.Should().Equal("blurry");
        g.Should().Equal("blurry");
        t5.Should().Equal("dark");
    }

    [Fact]
    public void A_single_negative_prompt_is_broadcast_over_a_batch_and_mismatched_batches_are_refused()
    {
        Sd3Prompt.Batch(["a", "b"], "ugly").Negative().ClipG.Should().Equal("ugly", "ugly");
        Sd3Prompt.Batch(["a", "b"]).Negative().T5.Should().Equal("", "");
        var mismatched = () => new Sd3Prompt(["a", "b"], Prompt3: ["c"]).Positive();
        mismatched.Should().Throw<ArgumentException>().WithMessage("*prompt_3*batch size 1*2*");
    }
}
