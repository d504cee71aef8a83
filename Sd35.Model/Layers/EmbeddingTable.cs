using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Layers;

/// <summary>
/// A lookup table (<c>nn.Embedding</c> without padding index, norm or gradients) whose parameter is
/// <c>weight</c> [entries, width], as in the checkpoints. Unlike TorchSharp's <c>nn.Embedding</c> it does not
/// fill the table with random numbers first: that took 5.6 s for T5-XXL's 32128 × 4096 table, even on the
/// meta device, and every weight is overwritten by the checkpoint anyway. Replicated under tensor parallelism.
/// </summary>
sealed class EmbeddingTable : nn.Module<Tensor, Tensor>
{
    public readonly Parameter weight;

    public EmbeddingTable(long entries, long width, ScalarType dtype, Device? device) : base(nameof(EmbeddingTable))
    {
        weight = new Parameter(empty(entries, width, dtype, device), requires_grad: false);
        RegisterComponents();
    }

    /// <summary>(…) int64 indices → (…, width).</summary>
    public override Tensor forward(Tensor indices)
    {
        return Kernels.Rows(weight, indices);
    }
}
