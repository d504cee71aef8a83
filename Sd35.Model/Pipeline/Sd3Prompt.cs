namespace Sd35.Pipeline;

/// <summary>
/// The texts of one SD3 request: a prompt per text encoder (CLIP-L, CLIP-G, T5) and the negative prompts, with
/// diffusers' fallbacks: <c>prompt_2</c> and <c>prompt_3</c> default to <c>prompt</c>; the negative prompt defaults
/// to "" and <c>negative_prompt_2/3</c> to the negative prompt. As in Python's <c>prompt_2 or prompt</c>, an empty
/// list counts as "not given", and so does an empty text passed to <see cref="Single"/> (a single string in diffusers).
/// </summary>
public sealed record Sd3Prompt(
    IReadOnlyList<string> Prompt,
    IReadOnlyList<string>? Prompt2 = null,
    IReadOnlyList<string>? Prompt3 = null,
    IReadOnlyList<string>? NegativePrompt = null,
    IReadOnlyList<string>? NegativePrompt2 = null,
    IReadOnlyList<string>? NegativePrompt3 = null)
{
    /// <summary>One prompt; the optional texts follow diffusers' string semantics (null or "" means "use the fallback").</summary>
    public static Sd3Prompt Single(string prompt, string? negativePrompt = null, string? prompt2 = null, string? prompt3 = null,
        string? negativePrompt2 = null, string? negativePrompt3 = null) =>
        new([prompt], One(prompt2), One(prompt3), One(negativePrompt), One(negativePrompt2), One(negativePrompt3));

    static string[]? One(string? text) => string.IsNullOrEmpty(text) ? null : [text];

    /// <summary>A batch of prompts with one negative prompt for all of them (diffusers broadcasts a string).</summary>
    public static Sd3Prompt Batch(IReadOnlyList<string> prompts, string? negativePrompt = null) =>
        new(prompts, NegativePrompt: negativePrompt is null ? null : Enumerable.Repeat(negativePrompt, prompts.Count).ToArray());

    public int BatchSize => Prompt.Count;

    /// <summary>The positive texts for CLIP-L, CLIP-G and T5.</summary>
    public (IReadOnlyList<string> ClipL, IReadOnlyList<string> ClipG, IReadOnlyList<string> T5) Positive()
    {
        if (Prompt.Count == 0) throw new ArgumentException("the prompt batch is empty");
        return (Prompt, Checked(Or(Prompt2, Prompt), "prompt_2"), Checked(Or(Prompt3, Prompt), "prompt_3"));
    }

    /// <summary>The negative texts for CLIP-L, CLIP-G and T5.</summary>
    public (IReadOnlyList<string> ClipL, IReadOnlyList<string> ClipG, IReadOnlyList<string> T5) Negative()
    {
        var negative = Checked(Or(NegativePrompt, Enumerable.Repeat("", BatchSize).ToArray()), "negative_prompt");
        return (negative, Checked(Or(NegativePrompt2, negative), "negative_prompt_2"), Checked(Or(NegativePrompt3, negative), "negative_prompt_3"));
    }

    // Python's `a or b` for lists: None and [] are falsy.
    static IReadOnlyList<string> Or(IReadOnlyList<string>? given, IReadOnlyList<string> fallback) =>
        given is null || given.Count == 0 ? fallback : given;

    IReadOnlyList<string> Checked(IReadOnlyList<string> texts, string name) =>
        texts.Count == BatchSize
            ? texts
            : throw new ArgumentException($"{name} has batch size {texts.Count}, but prompt has batch size {BatchSize}");
}
