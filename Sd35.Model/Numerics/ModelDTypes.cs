using static TorchSharp.torch;

namespace Sd35.Numerics;

/// <summary>The parameter dtypes the models are written and tested for.</summary>
public static class ModelDTypes
{
    /// <summary>
    /// Accepts float32 and bfloat16. float16 is refused: the reference (transformers) needs extra measures for it
    /// (T5 keeps <c>wo</c> in float32 and clamps activations to avoid overflow) that bf16, with float32's range,
    /// does not, and which are not implemented here.
    /// </summary>
    public static ScalarType Require(ScalarType dtype, string model) =>
        dtype is ScalarType.Float32 or ScalarType.BFloat16
            ? dtype
            : throw new ArgumentException($"{model}: dtype {dtype} is not supported; use Float32 or BFloat16");
}
