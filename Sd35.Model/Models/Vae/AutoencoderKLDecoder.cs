using Sd35.Layers.Parallel;
using Sd35.Mesh;
using Sd35.Numerics;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.Vae;

/// <summary>
/// The decoding half of diffusers' <c>AutoencoderKL</c>: optional <c>post_quant_conv</c>, then the <see cref="Decoder"/>.
/// State-dict names are the checkpoint's (<c>decoder.*</c>, <c>post_quant_conv.*</c>), so diffusers'
/// <c>vae/diffusion_pytorch_model.safetensors</c> loads by name lookup; the encoder half of that file is skipped.
/// Inference only: parameters never require gradients.
/// </summary>
public sealed class AutoencoderKLDecoder : nn.Module<Tensor, Tensor>
{
    internal readonly Decoder decoder;
    internal readonly ChannelParallelConv2d? post_quant_conv;

    public AutoencoderKLConfig Config { get; }
    public ScalarType DType { get; }
    public Device Device { get; }

    /// <summary>Checkpoint keys of the encoder half, which this model deliberately does not have.</summary>
    public static LoadOptions LoadOptions { get; } = new()
    {
        IgnoreUnexpected = key => key.StartsWith("encoder.", StringComparison.Ordinal) || key.StartsWith("quant_conv.", StringComparison.Ordinal),
    };

    /// <param name="rank">the device and the channel tensor-parallel group (<see cref="MeshRank.ForStage"/>);
    /// every rank builds its shard and gets the whole image</param>
    public AutoencoderKLDecoder(AutoencoderKLConfig config, MeshRank? rank = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(AutoencoderKLDecoder))
    {
        config.Validate();
        rank ??= MeshRank.Single();
        var tp = rank.Tp;
        Config = config;
        DType = ModelDTypes.Require(dtype, "VAE decoder");
        Device = rank.Device;
        decoder = new Decoder(config, tp, dtype, Device);
        if (config.UsePostQuantConv)
            post_quant_conv = new ChannelParallelConv2d(config.LatentChannels, config.LatentChannels, 1, tp, inputSharded: false, outputSharded: false, dtype, Device);
        RegisterComponents();
        foreach (var (_, parameter) in named_parameters()) parameter.requires_grad = false;
    }

    /// <summary>Builds the decoder described by a diffusers <c>vae/</c> folder and loads its weights.</summary>
    /// <param name="storage">how the convolution kernels are held (a float dtype; null: in <paramref name="dtype"/>)</param>
    public static AutoencoderKLDecoder FromFolder(ModelFolder folder, MeshRank? rank = null, ScalarType dtype = ScalarType.Float32, WeightStorage? storage = null) =>
        folder.Load(() => new AutoencoderKLDecoder(folder.ReadConfig<AutoencoderKLConfig>(), rank, dtype), LoadOptions with { Storage = storage });

    /// <summary>
    /// What the pipeline does with the final latents: <c>latents / scaling_factor + shift_factor</c> (in the
    /// latents' dtype, as diffusers), then <see cref="DecodeRaw"/>. The image is in about [-1, 1], not clamped.
    /// </summary>
    /// <param name="addShift">false: <c>latents / scaling_factor</c> alone, as diffusers' SD3 inpainting pipeline
    /// (v0.32.2 and later) decodes — it leaves out the shift the other SD3 pipelines add</param>
    public Tensor Decode(Tensor latents, bool addShift = true)
    {
        using var scope = NewDisposeScope();
        var unscaled = addShift ? latents / Config.ScalingFactor + (Config.ShiftFactor ?? 0) : latents / Config.ScalingFactor;
        return DecodeRaw(unscaled).MoveToOuterDisposeScope();
    }

    /// <summary>diffusers' <c>vae.decode(z)</c>: the decoder applied to <paramref name="latents"/> as given.</summary>
    public Tensor DecodeRaw(Tensor latents)
    {
        if (latents.dim() != 4 || latents.shape[1] != Config.LatentChannels)
            throw new ArgumentException($"latents must be [B, {Config.LatentChannels}, h, w], got [{string.Join(", ", latents.shape)}]");
        using var noGrad = no_grad();
        // The scope frees the converted copy (or alias) of the latents; the caller's tensor is never disposed.
        using var scope = NewDisposeScope();
        var z = latents.to(DType, Device);
        if (post_quant_conv is not null) z = post_quant_conv.forward(z);
        return decoder.forward(z).MoveToOuterDisposeScope();
    }

    public override Tensor forward(Tensor latents) => DecodeRaw(latents);
}
