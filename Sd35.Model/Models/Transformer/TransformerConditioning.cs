using static TorchSharp.torch;

namespace Sd35.Models.Transformer;

/// <summary>
/// Everything of the transformer's forward that does not depend on the latents, for every step of a schedule at
/// once: the projected prompt (context_embedder), and from each step's conditioning vector (timestep and pooled text
/// embeddings, not kept) every block's AdaLN modulation vectors and the output norm's — each one GEMM over all steps' rows
/// instead of one per step. Made by <see cref="SD3Transformer2DModel.Condition"/> before the first step, read by
/// <see cref="SD3Transformer2DModel.Forward(Tensor, TransformerConditioning, int, IReadOnlyCollection{int}?)"/>.
/// The position table needs no entry: it is computed once when the model is built.
/// Owns its tensors (they belong to no dispose scope): dispose it when the schedule is done.
/// </summary>
sealed class TransformerConditioning : IDisposable
{
    readonly BlockModulation[] _blocks;
    readonly Tensor _output;

    /// <param name="prompt">[B, L, D/tp]</param>
    /// <param name="blocks">per block, [S·B, k·D/tp] each</param>
    /// <param name="output">the output norm's (scale, shift) [S·B, 2D]</param>
    internal TransformerConditioning(Tensor prompt, BlockModulation[] blocks, Tensor output, int steps, long batch)
    {
        Prompt = prompt;
        (_blocks, _output) = (blocks, output);
        (Steps, Batch) = (steps, batch);
    }

    /// <summary>The projected prompt stream that enters the first block, [B, L, D/tp].</summary>
    public Tensor Prompt { get; }

    public int Steps { get; }

    /// <summary>Samples per forward (B).</summary>
    public long Batch { get; }

    /// <summary>Block <paramref name="block"/>'s modulation vectors at step <paramref name="step"/> (views).</summary>
    public BlockModulation Block(int block, int step)
    {
        Row(step);
        return _blocks[block].Rows(step, Batch);
    }

    /// <summary>The output norm's (scale, shift) at step <paramref name="step"/>, [B, 2D] (a view).</summary>
    public Tensor Output(int step) => _output.narrow(0, Row(step), Batch);

    long Row(int step) => step >= 0 && step < Steps ? step * Batch
        : throw new ArgumentOutOfRangeException(nameof(step), step, $"the conditioning covers steps 0..{Steps - 1}");

    public void Dispose()
    {
        Prompt.Dispose();
        foreach (var block in _blocks) block.Dispose();
        _output.Dispose();
    }
}
