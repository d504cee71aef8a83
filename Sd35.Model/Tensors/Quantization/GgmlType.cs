namespace Sd35.Tensors.Quantization;

/// <summary>
/// ggml's tensor types, with the numbers GGUF files store (ggml.h's <c>enum ggml_type</c>). Only some can be read;
/// <see cref="GgmlBlocks"/> says which and how they are laid out. The type names a weight's storage format too
/// (<see cref="Checkpoints.IStoredWeight.WeightStorage"/>), which is why safetensors' two fp8 formats are here as well.
/// </summary>
public enum GgmlType
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    BF16 = 30,

    // Not ggml's: safetensors' fp8 formats (PyTorch's float8_e4m3fn and float8_e5m2, named as safetensors names
    // them), one byte per value. TorchSharp has no fp8 dtype, so a storable layer holds such a weight as its bytes
    // and expands it at use, as it does blocks (Fp8Format). Numbered far past ggml's types so that no GGUF file
    // names them by accident; GgufHeader refuses them.
    F8_E4M3 = 1000,
    F8_E5M2 = 1001,
}
