using Sd35.Layers;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Models.Vae;

/// <summary>
/// diffusers' VAE <c>Encoder</c> (<c>double_z</c>): <c>conv_in</c>, the down blocks (<c>block_out_channels</c> in order,
/// <c>layers_per_block</c> resnets each, 2× downsampling on all but the last), the mid block with attention, then
/// GroupNorm, SiLU and <c>conv_out</c> to 2 × latent_channels (the posterior's mean and log-variance). Tensor parallel
/// as the <see cref="Decoder"/>: channel-sharded between layers, the image in and the moments out whole on every rank.
/// </summary>
sealed class Encoder : nn.Module<Tensor, Tensor>
{
    public readonly ChannelParallelConv2d conv_in;
    public readonly ModuleList<DownEncoderBlock2D> down_blocks;
    public readonly UNetMidBlock2D mid_block;
    public readonly ChannelParallelGroupNorm conv_norm_out;
    public readonly ChannelParallelConv2d conv_out;

    public Encoder(AutoencoderKLConfig config, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(Encoder))
    {
        var channels = config.BlockOutChannels;
        int groups = config.NormNumGroups;
        conv_in = new ChannelParallelConv2d(config.InChannels, channels[0], 3, tp, inputSharded: false, outputSharded: true, dtype, device);
        down_blocks = nn.ModuleList(channels.Select((outChannels, i) => new DownEncoderBlock2D(
            i == 0 ? channels[0] : channels[i - 1], outChannels, config.LayersPerBlock, addDownsample: i < channels.Length - 1,
            groups, tp, dtype, device)).ToArray());
        mid_block = new UNetMidBlock2D(channels[^1], groups, config.MidBlockAddAttention, tp, dtype, device);
        conv_norm_out = new ChannelParallelGroupNorm(groups, channels[^1], AutoencoderKLConfig.NormEps, tp, dtype, device);
        conv_out = new ChannelParallelConv2d(channels[^1], 2 * config.LatentChannels, 3, tp, inputSharded: true, outputSharded: false, dtype, device);
        RegisterComponents();
    }

    /// <summary>An image in [-1, 1] ([B, 3, H, W], the model's dtype) to the moments [B, 2·latent_channels, H/f, W/f].</summary>
    public override Tensor forward(Tensor image) =>
        image.Through([
            conv_in.forward,
            .. down_blocks.Select(b => (Func<Tensor, Tensor>)b.forward),
            mid_block.forward,
            h => ResnetBlock2D.NormActConv(conv_norm_out, conv_out, h),
        ]);
}
