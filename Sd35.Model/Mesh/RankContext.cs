using static TorchSharp.torch;

namespace Sd35.Mesh;

/// <summary>
/// What one rank's copy of a model needs to know about where it runs: its device and its process groups
/// along the sequence-parallel (ring) and tensor-parallel (head / hidden) axes.
/// </summary>
public sealed record RankContext(Device Device, IProcessGroup Sp, IProcessGroup Tp)
{
    /// <summary>A single device: both groups are of size one, so every collective is the identity.</summary>
    public static RankContext Single(Device? device = null) =>
        new(device ?? CPU, SingleProcessGroup.Instance, SingleProcessGroup.Instance);

    /// <summary>A device of a tensor-parallel group with no sequence parallelism (the text encoders and the VAE).</summary>
    public static RankContext TensorParallel(IProcessGroup tp, Device? device = null) =>
        new(device ?? CPU, SingleProcessGroup.Instance, tp);
}
