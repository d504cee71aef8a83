using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// One source of named tensors inside a <see cref="Checkpoint"/>: a safetensors file, a GGUF file, or a view that
/// renames (and splits or reorders) another checkpoint's tensors. <see cref="Path"/> names the file in errors.
/// </summary>
public interface ITensorFile : IDisposable
{
    string Path { get; }
    IEnumerable<string> Keys { get; }
    TensorEntry Entry(string key);
    /// <summary>A new CPU tensor: the stored values, or for a block-quantized entry its raw blocks as uint8 <c>[rows, bytes per row]</c>.</summary>
    Tensor Read(string key);
    /// <summary>Copies a dense tensor into <paramref name="target"/>, converting dtype and device; shapes already agree.</summary>
    void ReadInto(string key, Tensor target);
    /// <summary><see cref="ReadInto"/> for a tensor that owns its storage (a parameter), which a file may re-seat on storage it reads straight into.</summary>
    void ReadIntoOwned(string key, Tensor target) => ReadInto(key, target);
}
