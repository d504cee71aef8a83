using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// Implemented by a module whose parameters hold only this rank's piece of a checkpoint tensor (a column
/// or row shard, a head-padded projection). The loader reads the full tensor under the parameter's own
/// checkpoint name and asks the module for the local piece, so a sharded model still loads by name lookup.
/// </summary>
interface IShardedParameters
{
    /// <summary>
    /// Maps the full checkpoint tensor of a direct parameter (its local name, e.g. "weight") to this
    /// rank's piece, or returns null when the parameter is stored whole.
    /// </summary>
    Tensor? ShardFromFull(string parameterName, Tensor full);

    /// <summary>
    /// Whether the parameter is stored whole on this rank (one device, no padding): the loader then reads it
    /// straight into the parameter, without materialising the full tensor first.
    /// </summary>
    bool HoldsWhole(string parameterName) => false;
}
