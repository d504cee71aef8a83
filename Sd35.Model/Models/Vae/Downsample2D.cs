using Sd35.Layers;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.Vae;

/// <summary>
/// diffusers' <c>Downsample2D</c> as the VAE encoder builds it (<c>use_conv</c>, <c>padding=0</c>): zero padding of one
/// row at the bottom and one column at the right, then a 3×3 <c>conv</c> with stride 2 — the asymmetric pad is why
/// the convolution itself pads nothing.
/// </summary>
sealed class Downsample2D(long channels, IProcessGroup tp, ScalarType dtype, Device? device)
    : ResampleConv2d(nameof(Downsample2D),
        new ChannelParallelConv2d(channels, channels, 3, tp, inputSharded: true, outputSharded: true, dtype, device, stride: 2, samePadding: false))
{
    protected override Tensor Resample(Tensor input)
    {
        // (left, right, top, bottom) = (0, 1, 0, 1), as diffusers' F.pad(x, (0, 1, 0, 1)).
        var padded = nn.functional.pad(input, [0, 1, 0, 1]);
        Kernels.RecordElementwise("pad", padded, 0, input);
        return padded;
    }
}
