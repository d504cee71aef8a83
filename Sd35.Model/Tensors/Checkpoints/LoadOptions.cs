namespace Sd35.Tensors.Checkpoints;

/// <summary>How strictly a checkpoint must match the module it is loaded into.</summary>
public sealed record LoadOptions
{
    /// <summary>
    /// Other checkpoint names under which a parameter may be stored: for T5, the token embedding is
    /// one tensor known as both <c>shared.weight</c> and <c>encoder.embed_tokens.weight</c>.
    /// </summary>
    public IReadOnlyDictionary<string, string[]> Aliases { get; init; } = new Dictionary<string, string[]>();

    /// <summary>
    /// Checkpoint keys the module deliberately does not have (for example the VAE encoder when only the
    /// decoder is built). Every other unused key is an error.
    /// </summary>
    public Func<string, bool> IgnoreUnexpected { get; init; } = _ => false;

    public static LoadOptions Strict { get; } = new();
}
