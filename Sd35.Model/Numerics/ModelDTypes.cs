using static TorchSharp.torch;

namespace Sd35.Numerics;

/// <summary>
/// The dtype policy, in one place. Every model (transformer, CLIP-L/G, T5, VAE decoder) holds its parameters in the
/// one dtype the pipeline runs in, float32 or bfloat16, as diffusers' SD3 pipeline with one <c>torch_dtype</c>
/// does; every model's constructor checks it here. Inside the models a few computations run in float32 whatever
/// the dtype, each because the reference does the same (or, for the bf16 convolution, because libtorch's CPU kernel
/// is inaccurate): norm statistics (<c>RmsNorm</c>, <c>DistributedLayerNorm</c>), T5's softmax, ring attention's
/// partial results and log-sum-exp merge, the timestep embedding, the sin-cos position table, the scheduler's Euler
/// step, and bf16 3×3 convolutions in the VAE (<c>ChannelParallelConv2d.NeedsFloat32Workaround</c>). The decoded
/// image is converted to float32 once, at the end.
/// </summary>
static class ModelDTypes
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
