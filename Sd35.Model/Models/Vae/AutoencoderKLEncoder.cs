using Sd35.Layers.Parallel;
using Sd35.Mesh;
using Sd35.Numerics;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.Vae;

/// <summary>
/// The encoding half of diffusers' <c>AutoencoderKL</c>: the <see cref="Encoder"/>, then the optional
/// <c>quant_conv</c>, giving the posterior (<see cref="DiagonalGaussianDistribution"/>). It loads from the same
/// <c>vae/diffusion_pytorch_model.safetensors</c> as <see cref="AutoencoderKLDecoder"/>, by name, skipping the
/// decoder half. Inference only.
/// </summary>
public sealed class AutoencoderKLEncoder : nn.Module<Tensor, Tensor>
{
    internal readonly Encoder encoder;
    internal readonly ChannelParallelConv2d? quant_conv;

    public AutoencoderKLConfig Config { get; }
    public ScalarType DType { get; }
    public Device Device { get; }

    /// <summary>Checkpoint keys of the decoder half, which this model deliberately does not have.</summary>
    public static LoadOptions LoadOptions { get; } = new()
    {
        IgnoreUnexpected = key => key.StartsWith("decoder.", StringComparison.Ordinal) || key.StartsWith("post_quant_conv.", StringComparison.Ordinal),
    };

    /// <param name="rank">the device and the channel tensor-parallel group; every rank gets the whole posterior</param>
    public AutoencoderKLEncoder(AutoencoderKLConfig config, MeshRank? rank = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(AutoencoderKLEncoder))
    {
        config.Validate();
        rank ??= MeshRank.Single();
        Config = config;
        DType = ModelDTypes.Require(dtype, "VAE encoder");
        Device = rank.Device;
        encoder = new Encoder(config, rank.Tp, dtype, Device);
        if (config.UseQuantConv)
            quant_conv = new ChannelParallelConv2d(2 * config.LatentChannels, 2 * config.LatentChannels, 1, rank.Tp, inputSharded: false, outputSharded: false, dtype, Device);
        RegisterComponents();
        foreach (var (_, parameter) in named_parameters()) parameter.requires_grad = false;
    }

    /// <summary>Builds the encoder described by a diffusers <c>vae/</c> folder and loads its weights.</summary>
    /// <param name="storage">how the convolution kernels are held (a float dtype; null: in <paramref name="dtype"/>)</param>
    public static AutoencoderKLEncoder FromFolder(ModelFolder folder, MeshRank? rank = null, ScalarType dtype = ScalarType.Float32, WeightStorage? storage = null) =>
        folder.Load(() => new AutoencoderKLEncoder(folder.ReadConfig<AutoencoderKLConfig>(), rank, dtype), LoadOptions with { Storage = storage });

    /// <summary>diffusers' <c>vae.encode(image).latent_dist</c>: <paramref name="image"/> in [-1, 1], [B, in_channels, H, W].</summary>
    public DiagonalGaussianDistribution Encode(Tensor image)
    {
        using var moments = forward(image);
        return new DiagonalGaussianDistribution(moments);
    }

    /// <summary>
    /// What the image-to-image pipelines do with a posterior sample: <c>(latents − shift_factor) · scaling_factor</c>,
    /// the inverse of the scaling before decoding.
    /// </summary>
    public Tensor Scale(Tensor latents)
    {
        using var scope = NewDisposeScope();
        return ((latents - (Config.ShiftFactor ?? 0)) * Config.ScalingFactor).MoveToOuterDisposeScope();
    }

    /// <summary>The encoder and <c>quant_conv</c>: the posterior's moments [B, 2·latent_channels, H/f, W/f].</summary>
    public override Tensor forward(Tensor image)
    {
        if (image.dim() != 4 || image.shape[1] != Config.InChannels)
            throw new ArgumentException($"image must be [B, {Config.InChannels}, H, W], got [{string.Join(", ", image.shape)}]");
        int factor = Config.ScaleFactor;
        if (image.shape[2] % factor != 0 || image.shape[3] % factor != 0)
            throw new ArgumentException($"image size {image.shape[2]}×{image.shape[3]} is not a multiple of the VAE's factor {factor}");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var moments = encoder.forward(image.to(DType, Device));
        if (quant_conv is not null) moments = quant_conv.forward(moments);
        return moments.MoveToOuterDisposeScope();
    }
}
