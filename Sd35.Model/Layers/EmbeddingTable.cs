using Sd35.Tensors.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Layers;

/// <summary>
/// A lookup table (<c>nn.Embedding</c> without padding index, norm or gradients) whose parameter is
/// <c>weight</c> [entries, width], as in the checkpoints. Unlike TorchSharp's <c>nn.Embedding</c> it does not
/// fill the table with random numbers first: that took 5.6 s for T5-XXL's 32128 × 4096 table, even on the
/// meta device, and every weight is overwritten by the checkpoint anyway. The table is held in a storage format
/// (<see cref="StoredWeightModule"/>: T5-XXL's is 0.53 GB in fp32, 0.14 GB in Q8_0 blocks) and a lookup gathers only
/// the rows asked for, in that form, and expands those: a prompt touches a few hundred of the 32128 rows, so the
/// table is never expanded whole. Replicated under tensor parallelism.
/// </summary>
sealed class EmbeddingTable : StoredWeightModule
{
    public EmbeddingTable(long entries, long width, ScalarType dtype, Device? device)
        : base(nameof(EmbeddingTable), [entries, width], [entries, width], dtype, device)
    {
        RegisterComponents();
    }

    public long Entries => WeightShape[0];
    public long Width => WeightShape[1];

    /// <summary>(…) int64 indices → (…, width).</summary>
    public override Tensor forward(Tensor indices)
    {
        if (HeldAsComputed) return Kernels.Rows(weight, indices);
        // A row of the table is a row of its stored form (fp8 bytes, a row of whole blocks), so the rows gather as stored.
        using var rows = Kernels.Rows(weight, indices);
        return Expand(rows, [.. indices.shape, Width]);
    }

    /// <summary>A row is a whole row of blocks wherever its width is whole blocks; replicated, nothing is cut.</summary>
    public override bool CanHoldBlocks(GgmlType type, long fullRowLength) => WholeBlocks(type, fullRowLength);

    /// <summary>Every rank holds the whole table: a copy of it (the caller keeps <paramref name="full"/>).</summary>
    public override QuantizedWeight ShardBlocks(QuantizedWeight full) => full.Clone();
}
