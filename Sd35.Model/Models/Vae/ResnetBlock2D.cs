using Sd35.Layers;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.Vae;

/// <summary>
/// diffusers' <c>ResnetBlock2D</c> as the VAE decoder uses it (no time embedding, output scale 1):
/// <c>shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))</c>, where the shortcut is a 1×1 <c>conv_shortcut</c>
/// when the channel count changes. Input and output are channel-sharded over <c>tp</c> (whole tensors for one rank).
/// </summary>
sealed class ResnetBlock2D : nn.Module<Tensor, Tensor>
{
    public readonly ChannelParallelGroupNorm norm1;
    public readonly ChannelParallelConv2d conv1;
    public readonly ChannelParallelGroupNorm norm2;
    public readonly ChannelParallelConv2d conv2;
    public readonly ChannelParallelConv2d? conv_shortcut;

    public ResnetBlock2D(long inChannels, long outChannels, int groups, IProcessGroup tp, ScalarType dtype, Device? device)
        : base(nameof(ResnetBlock2D))
    {
        norm1 = new ChannelParallelGroupNorm(groups, inChannels, AutoencoderKLConfig.NormEps, tp, dtype, device);
        conv1 = new ChannelParallelConv2d(inChannels, outChannels, 3, tp, inputSharded: true, outputSharded: true, dtype, device);
        norm2 = new ChannelParallelGroupNorm(groups, outChannels, AutoencoderKLConfig.NormEps, tp, dtype, device);
        conv2 = new ChannelParallelConv2d(outChannels, outChannels, 3, tp, inputSharded: true, outputSharded: true, dtype, device);
        if (inChannels != outChannels)
            conv_shortcut = new ChannelParallelConv2d(inChannels, outChannels, 1, tp, inputSharded: true, outputSharded: true, dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        // Intermediates are freed as soon as the next exists (at 1024² the first resnet of the last stage holds its
        // 256-channel input, 1 GiB in fp32, plus at most two 128-channel intermediates); the scope only catches the
        // extra handles that in-place ops may return.
        using var scope = NewDisposeScope();
        var hidden = NormActConv(norm1, conv1, input).Then(h => NormActConv(norm2, conv2, h));
        var shortcut = conv_shortcut?.forward(input);
        var output = hidden.add_(shortcut ?? input);
        Kernels.RecordElementwise("residual", output, 1, output, input);
        shortcut?.Dispose();
        return output.MoveToOuterDisposeScope();
    }

    /// <summary><c>conv(silu(norm(x)))</c>, the activation applied in place on the norm's fresh output.</summary>
    internal static Tensor NormActConv(ChannelParallelGroupNorm norm, ChannelParallelConv2d conv, Tensor x)
    {
        using var scope = NewDisposeScope();
        var activated = norm.forward(x).silu_();
        Kernels.RecordElementwise("silu", activated, 4, activated);
        return conv.forward(activated).MoveToOuterDisposeScope();
    }
}
