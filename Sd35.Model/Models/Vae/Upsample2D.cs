using Sd35.Layers;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.Vae;

/// <summary>
/// diffusers' <c>Upsample2D</c> with a convolution: nearest-neighbour 2× then a 3×3 <c>conv</c>. (diffusers upcasts
/// bf16 to fp32 around the interpolation for old PyTorch kernels; copying values is exact in any dtype, so that is not
/// reproduced.)
/// </summary>
sealed class Upsample2D(long channels, IProcessGroup tp, ScalarType dtype, Device? device)
    : ResampleConv2d(nameof(Upsample2D), new ChannelParallelConv2d(channels, channels, 3, tp, inputSharded: true, outputSharded: true, dtype, device))
{
    protected override Tensor Resample(Tensor input)
    {
        var upsampled = nn.functional.interpolate(input, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest);
        Kernels.RecordElementwise("upsample_nearest", upsampled, 0, input);
        return upsampled;
    }
}
