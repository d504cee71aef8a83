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

    /// <summary>
    /// Loads a submodule from a whole-model checkpoint: parameter <c>n</c> is read from key <c>KeyPrefix + n</c>, and
    /// only keys under the prefix count as unexpected (e.g. <c>transformer_blocks.0.</c> for one joint block).
    /// </summary>
    public string KeyPrefix { get; init; } = "";

    /// <summary>
    /// How storable weights (<see cref="IStoredWeight"/>) are held: float storage apart from the compute dtype and
    /// quantization at load. Null: as the model was built (blocks the checkpoint holds are still kept as blocks).
    /// </summary>
    public Sd35.Tensors.Quantization.WeightStorage? Storage { get; init; }

    public static LoadOptions Strict { get; } = new();
}
