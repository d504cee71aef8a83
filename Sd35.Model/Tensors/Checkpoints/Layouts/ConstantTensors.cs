using Sd35.Errors;
using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints.Layouts;

/// <summary>
/// Tensors a layout implies without storing them, held in memory under the file they stand in for: CLIP-L's
/// <c>text_projection</c>, which SD3's single-file text encoders leave out because SD3 uses CLIP-L's pooled output
/// unprojected (diffusers loads them with an identity projection, as here).
/// </summary>
sealed class ConstantTensors(string path, IReadOnlyDictionary<string, Tensor> tensors) : ITensorFile
{
    public string Path { get; } = path;
    public IEnumerable<string> Keys => tensors.Keys;

    public TensorEntry Entry(string key) =>
        tensors.TryGetValue(key, out var t) ? new TensorEntry(key, t.dtype, t.shape, 0, 0) : throw new CheckpointException(Path, key, "no such tensor in the checkpoint");

    public Tensor Read(string key) => tensors[key].clone();

    public void ReadInto(string key, Tensor target)
    {
        using var noGrad = no_grad();
        target.copy_(tensors[key]);
    }

    public void Dispose()
    {
        foreach (var t in tensors.Values) t.Dispose();
    }
}
