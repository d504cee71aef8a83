using Sd35.Tensors.Quantization;
using TorchSharp;

namespace Sd35.Tensors.Checkpoints;

/// <summary>The element types the safetensors format names, with their torch equivalents and sizes.</summary>
public static class SafetensorsDType
{
    static readonly Dictionary<string, (torch.ScalarType Type, int Size)> Known = new()
    {
        ["F64"] = (torch.ScalarType.Float64, 8),
        ["F32"] = (torch.ScalarType.Float32, 4),
        ["F16"] = (torch.ScalarType.Float16, 2),
        ["BF16"] = (torch.ScalarType.BFloat16, 2),
        ["I64"] = (torch.ScalarType.Int64, 8),
        ["I32"] = (torch.ScalarType.Int32, 4),
        ["I16"] = (torch.ScalarType.Int16, 2),
        ["I8"] = (torch.ScalarType.Int8, 1),
        ["U8"] = (torch.ScalarType.Byte, 1),
        ["BOOL"] = (torch.ScalarType.Bool, 1),
        // TorchSharp has no float8 dtype: fp8 tensors read as their bytes, and their entry names the format
        // (TensorEntry.Quantized) for the loader to keep or expand them. After U8, so that uint8 is written as U8.
        [nameof(GgmlType.F8_E4M3)] = (torch.ScalarType.Byte, 1),
        [nameof(GgmlType.F8_E5M2)] = (torch.ScalarType.Byte, 1),
    };

    public static bool TryParse(string name, out torch.ScalarType type, out int elementSize)
    {
        if (Known.TryGetValue(name, out var entry))
        {
            (type, elementSize) = entry;
            return true;
        }
        (type, elementSize) = (default, 0);
        return false;
    }

    public static string NameOf(torch.ScalarType type) =>
        Known.FirstOrDefault(kv => kv.Value.Type == type).Key
        ?? throw new NotSupportedException($"safetensors has no dtype for torch {type}");

    public static int SizeOf(torch.ScalarType type) => Known[NameOf(type)].Size;
}
