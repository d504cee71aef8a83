using Sd35.Layers;
using Sd35.Mesh;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Models.Vae;

/// <summary>
/// diffusers' <c>UpDecoderBlock2D</c>: <c>resnetCount</c> resnets (the first changes the channel count) and, on all
/// but the last stage, a 2× upsampler.
/// </summary>
sealed class UpDecoderBlock2D : nn.Module<Tensor, Tensor>
{
    public readonly ModuleList<ResnetBlock2D> resnets;
    public readonly ModuleList<Upsample2D> upsamplers;

    public UpDecoderBlock2D(long inChannels, long outChannels, int resnetCount, bool addUpsample, int groups, IProcessGroup tp,
        ScalarType dtype, Device? device)
        : base(nameof(UpDecoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, resnetCount)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, groups, tp, dtype, device)).ToArray());
        upsamplers = addUpsample ? nn.ModuleList(new Upsample2D(outChannels, tp, dtype, device)) : nn.ModuleList<Upsample2D>();
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) =>
        input.Through([.. resnets.Select(r => (Func<Tensor, Tensor>)r.forward), .. upsamplers.Select(u => (Func<Tensor, Tensor>)u.forward)]);
}
