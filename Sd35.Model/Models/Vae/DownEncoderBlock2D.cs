using Sd35.Layers;
using Sd35.Mesh;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Models.Vae;

/// <summary>
/// diffusers' <c>DownEncoderBlock2D</c>: <c>resnetCount</c> resnets (the first changes the channel count) and, on all
/// but the last stage, a 2× downsampler. The encoder's mirror of <see cref="UpDecoderBlock2D"/>.
/// </summary>
sealed class DownEncoderBlock2D : nn.Module<Tensor, Tensor>
{
    public readonly ModuleList<ResnetBlock2D> resnets;
    public readonly ModuleList<Downsample2D> downsamplers;

    public DownEncoderBlock2D(long inChannels, long outChannels, int resnetCount, bool addDownsample, int groups, IProcessGroup tp,
        ScalarType dtype, Device? device)
        : base(nameof(DownEncoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, resnetCount)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, groups, tp, dtype, device)).ToArray());
        downsamplers = addDownsample ? nn.ModuleList(new Downsample2D(outChannels, tp, dtype, device)) : nn.ModuleList<Downsample2D>();
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) =>
        input.Through([.. resnets.Select(r => (Func<Tensor, Tensor>)r.forward), .. downsamplers.Select(d => (Func<Tensor, Tensor>)d.forward)]);
}
