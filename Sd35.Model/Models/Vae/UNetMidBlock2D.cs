using Sd35.Layers;
using Sd35.Mesh;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Models.Vae;

/// <summary>diffusers' <c>UNetMidBlock2D</c> of the VAE decoder: resnet, self-attention (optional), resnet.</summary>
sealed class UNetMidBlock2D : nn.Module<Tensor, Tensor>
{
    public readonly ModuleList<ResnetBlock2D> resnets;
    public readonly ModuleList<VaeAttention> attentions;

    public UNetMidBlock2D(long channels, int groups, bool addAttention, IProcessGroup tp, ScalarType dtype, Device? device)
        : base(nameof(UNetMidBlock2D))
    {
        resnets = nn.ModuleList(
            new ResnetBlock2D(channels, channels, groups, tp, dtype, device),
            new ResnetBlock2D(channels, channels, groups, tp, dtype, device));
        // Without attention diffusers keeps a None placeholder, which holds no weights: an empty list here.
        attentions = addAttention ? nn.ModuleList(new VaeAttention(channels, groups, tp, dtype, device)) : nn.ModuleList<VaeAttention>();
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) =>
        input.Through([resnets[0].forward, .. attentions.Select(a => (Func<Tensor, Tensor>)a.forward), resnets[1].forward]);
}
