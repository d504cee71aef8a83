using Sd35.Layers;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Models.Vae;

/// <summary>
/// diffusers' VAE <c>Decoder</c>: <c>conv_in</c>, the mid block, the up blocks (channels in reversed
/// <c>block_out_channels</c> order, <c>layers_per_block + 1</c> resnets each, 2× upsampling on all but the last),
/// then GroupNorm, SiLU and <c>conv_out</c>. Between layers activations are channel-sharded over <c>tp</c>; the
/// latents come in whole and the image goes out whole on every rank (3 channels do not split).
/// </summary>
sealed class Decoder : nn.Module<Tensor, Tensor>
{
    public readonly ChannelParallelConv2d conv_in;
    public readonly UNetMidBlock2D mid_block;
    public readonly ModuleList<UpDecoderBlock2D> up_blocks;
    public readonly ChannelParallelGroupNorm conv_norm_out;
    public readonly ChannelParallelConv2d conv_out;

    public Decoder(AutoencoderKLConfig config, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(Decoder))
    {
        var channels = config.BlockOutChannels.Reverse().ToArray();
        int groups = config.NormNumGroups;
        conv_in = new ChannelParallelConv2d(config.LatentChannels, channels[0], 3, tp, inputSharded: false, outputSharded: true, dtype, device);
        mid_block = new UNetMidBlock2D(channels[0], groups, config.MidBlockAddAttention, tp, dtype, device);
        up_blocks = nn.ModuleList(channels.Select((outChannels, i) => new UpDecoderBlock2D(
            i == 0 ? channels[0] : channels[i - 1], outChannels, config.LayersPerBlock + 1, addUpsample: i < channels.Length - 1,
            groups, tp, dtype, device)).ToArray());
        conv_norm_out = new ChannelParallelGroupNorm(groups, channels[^1], AutoencoderKLConfig.NormEps, tp, dtype, device);
        conv_out = new ChannelParallelConv2d(channels[^1], config.OutChannels, 3, tp, inputSharded: true, outputSharded: false, dtype, device);
        RegisterComponents();
    }

    /// <summary>Decodes latents (already unscaled, in the model's dtype) to an image in about [-1, 1].</summary>
    public override Tensor forward(Tensor latents) =>
        latents.Through([
            conv_in.forward,
            mid_block.forward,
            .. up_blocks.Select(b => (Func<Tensor, Tensor>)b.forward),
            h => ResnetBlock2D.NormActConv(conv_norm_out, conv_out, h),
        ]);
}
