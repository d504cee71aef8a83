using Sd35.Layers;
using Sd35.Layers.Parallel;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.Vae;

/// <summary>
/// What diffusers' <c>Downsample2D</c> and <c>Upsample2D</c> with a convolution share: a 2× resampling, then a 3×3
/// <c>conv</c>. The resampling acts per channel, so it runs on the local channel shard.
/// </summary>
abstract class ResampleConv2d : nn.Module<Tensor, Tensor>
{
    public readonly ChannelParallelConv2d conv;

    protected ResampleConv2d(string name, ChannelParallelConv2d conv) : base(name)
    {
        this.conv = conv;
        RegisterComponents();
    }

    /// <summary>The input resampled, a new tensor (the input is left to the caller).</summary>
    protected abstract Tensor Resample(Tensor input);

    public override Tensor forward(Tensor input) => Resample(input).Then(conv.forward);
}
