using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints;

/// <summary>Writes tensors as a standard safetensors file (sorted keys, header padded to 8 bytes).</summary>
public static class SafetensorsWriter
{
    /// <remarks>The sharded checkpoint writer's single-file path, fed these tensors (each handed over as a new handle it may dispose).</remarks>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var specs = tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new TensorSpec(kv.Key, kv.Value.dtype, kv.Value.shape)).ToList();
        ShardedSafetensorsWriter.WriteFile(path, specs, spec => tensors[spec.Name].detach(), metadata);
    }
}
