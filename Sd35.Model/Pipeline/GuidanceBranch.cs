using Sd35.Mesh;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// The prompt rows one device runs the transformer with, moved to its device once (xDiT's first change to
/// diffusers' loop: pick this rank's branch). Under guidance with a cfg group of one, the device runs both branches
/// as the batch [negative ; positive] as diffusers does; with a cfg group of two, submesh 0 runs the negative
/// (unconditional) branch and submesh 1 the positive.
/// </summary>
sealed class GuidanceBranch : IDisposable
{
    public Tensor Embeds { get; }
    public Tensor Pooled { get; }
    public Tensor PositiveEmbeds { get; }
    public Tensor PositivePooled { get; }
    public bool Guided { get; }

    /// <summary>How many copies of the latents one forward pass takes: 2 when this device runs both branches, else 1.</summary>
    public int Batch { get; }

    public GuidanceBranch(EncodedPrompt prompt, MeshRank rank)
    {
        var device = rank.Device;
        var (positive, negative) = (prompt.Positive, prompt.Negative);
        Guided = negative is not null;
        PositiveEmbeds = positive.PromptEmbeds.to(device);
        PositivePooled = positive.PooledPromptEmbeds.to(device);
        if (negative is null)
        {
            (Embeds, Pooled, Batch) = (PositiveEmbeds, PositivePooled, 1);
            RunsPositive = true;
        }
        else if (rank.Cfg.Size == 2)
        {
            var mine = rank.IsUncond ? negative : positive;
            (Embeds, Pooled, Batch) = (mine.PromptEmbeds.to(device), mine.PooledPromptEmbeds.to(device), 1);
            RunsPositive = !rank.IsUncond;
        }
        else
        {
            Embeds = Batched(negative.PromptEmbeds, positive.PromptEmbeds, device);
            Pooled = Batched(negative.PooledPromptEmbeds, positive.PooledPromptEmbeds, device);
            Batch = 2;
            RunsPositive = true;
        }
    }

    /// <summary>Whether this device computes the positive (conditional) branch: always, unless it is on the negative cfg submesh.</summary>
    public bool RunsPositive { get; }

    static Tensor Batched(Tensor negative, Tensor positive, Device device)
    {
        using var both = cat([negative, positive], 0);
        return both.to(device, copy: true);
    }

    public void Dispose()
    {
        // Without guidance Embeds is PositiveEmbeds: distinct by reference, and listed before any is disposed
        // (Tensor.Equals compares values, which a disposed tensor no longer has).
        foreach (var tensor in new[] { Embeds, Pooled, PositiveEmbeds, PositivePooled }.Distinct(ReferenceEqualityComparer.Instance).ToList())
            ((Tensor)tensor!).Dispose();
    }
}
