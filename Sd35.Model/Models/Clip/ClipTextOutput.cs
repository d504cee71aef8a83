using static TorchSharp.torch;

namespace Sd35.Models.Clip;

/// <summary>
/// What the CLIP text model returns, under transformers' output names. The caller owns every tensor.
/// </summary>
/// <param name="HiddenStates">[0] the embeddings, [i] the output of layer i (before the final LayerNorm).</param>
/// <param name="LastHiddenState">The last layer's output after the final LayerNorm.</param>
/// <param name="PooledOutput">LastHiddenState at each row's end-of-text token.</param>
/// <param name="TextEmbeds">PooledOutput through <c>text_projection</c>; null from the bare transformer.</param>
public sealed record ClipTextOutput(IReadOnlyList<Tensor> HiddenStates, Tensor LastHiddenState, Tensor PooledOutput, Tensor? TextEmbeds = null)
    : IDisposable
{
    /// <summary><c>hidden_states[index]</c> with Python's negative indices: −1 is the last layer's output, −2 (SD3's choice) the one before.</summary>
    public Tensor HiddenState(int index) => HiddenStates[index < 0 ? HiddenStates.Count + index : index];

    public void Dispose()
    {
        foreach (var state in HiddenStates) state.Dispose();
        LastHiddenState.Dispose();
        PooledOutput.Dispose();
        TextEmbeds?.Dispose();
    }
}
