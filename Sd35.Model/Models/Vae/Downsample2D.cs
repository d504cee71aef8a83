using Sd35.Layers;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.Vae;

/// <summary>
/// diffusers' <c>Downsample2D</c> as the VAE encoder builds it (<c>use_conv</c>, <c>padding=0</c>): zero padding of one
/// row at the bottom and one column at the right, then a 3×3 <c>conv</c> with stride 2 — the asymmetric pad is why
/// the convolution itself pads nothing. Padding acts per channel, so it runs on the local channel shard.
/// </summary>
sealed class Downsample2D : nn.Module<Tensor, Tensor>
{
    public readonly ChannelParallelConv2d conv;

    public Downsample2D(long channels, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(Downsample2D))
    {
        conv = new ChannelParallelConv2d(channels, channels, 3, tp, inputSharded: true, outputSharded: true, dtype, device, stride: 2, samePadding: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        // (left, right, top, bottom) = (0, 1, 0, 1), as diffusers' F.pad(x, (0, 1, 0, 1)).
        var padded = nn.functional.pad(input, [0, 1, 0, 1]);
        Kernels.RecordElementwise("pad", padded, 0, input);
        return padded.Then(conv.forward);
    }
}
