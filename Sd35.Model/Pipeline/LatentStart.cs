using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// Where the denoising loop starts, and for inpainting what it keeps after every step — <c>prepare_latents</c> and the
/// mask blend of diffusers' three SD3 pipelines, on one device:
/// <list type="bullet">
/// <item>text to image: the pipeline's noise draw [n, C, h, w];</item>
/// <item>image to image: the encoded image (one, repeated n times) mixed with that noise by the flow-match
/// <c>scale_noise</c> at the first step run's σ (at strength 1, σ = 1: the noise itself);</item>
/// <item>inpainting: the same start, except that strength 1 starts from the noise without mixing; the mask, binarized at
/// 0.5 and resized to the latent grid by nearest neighbour (diffusers' mask processor, then <c>F.interpolate</c>), keeps
/// its 0 region at the encoded image re-noised to each step's σ (at the last step: the encoded image itself).</item>
/// </list>
/// Every device builds the same tensors from the same draws, so every device's latents stay identical.
/// </summary>
sealed class LatentStart : IDisposable
{
    readonly Tensor? _imageLatents;
    readonly Tensor? _noise;
    readonly Tensor? _mask;

    /// <summary>The latents the first step runs on, on the device; the loop consumes a copy.</summary>
    public Tensor Initial { get; }

    LatentStart(Tensor initial, Tensor? imageLatents = null, Tensor? noise = null, Tensor? mask = null) =>
        (Initial, _imageLatents, _noise, _mask) = (initial, imageLatents, noise, mask);

    /// <summary>Text to image: the noise is the start.</summary>
    public static LatentStart FromNoise(Tensor noise, Device device) => new(noise.to(device, copy: true));

    /// <param name="imageLatents">the encoded, scaled image [1, C, h, w] (taken over)</param>
    /// <param name="noise">the pipeline's draw [n, C, h, w] (taken over)</param>
    /// <param name="scheduler">already started at the first step run (<see cref="FlowMatchEulerScheduler.StartAt"/>)</param>
    public static LatentStart FromImage(GenerationRequest request, Tensor imageLatents, Tensor noise, FlowMatchEulerScheduler scheduler, Device device)
    {
        using var scope = NewDisposeScope();
        var batch = noise.shape[0];
        var image = imageLatents.to(device).repeat(batch, 1, 1, 1);
        var onDevice = noise.to(device);
        bool inpainting = request.Mask is not null;
        // diffusers' inpainting starts from pure noise at strength 1 (is_strength_max); image to image always mixes.
        var initial = inpainting && request.StrengthOrDefault == 1.0 ? onDevice.clone() : scheduler.ScaleNoise(image, 0, onDevice);
        if (!inpainting) return new LatentStart(initial.MoveToOuterDisposeScope());
        var mask = LatentMask(request.Mask!, image.shape[2], image.shape[3], noise.dtype, device).repeat(batch, 1, 1, 1);
        return new LatentStart(initial.MoveToOuterDisposeScope(), image.MoveToOuterDisposeScope(), onDevice.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope());
    }

    /// <summary>diffusers' mask path: binarize at 0.5 at full size, then nearest-neighbour to the latent grid [1, 1, h, w].</summary>
    public static Tensor LatentMask(InputImage mask, long height, long width, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        var full = mask.ToTensor();
        var binary = full.ge(0.5).to(ScalarType.Float32);
        var resized = nn.functional.interpolate(binary, size: [height, width], mode: InterpolationMode.Nearest);
        return resized.to(dtype, device).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// After step <paramref name="step"/>: inpainting puts back the kept region, <c>(1 − mask)·proper + mask·latents</c>,
    /// where proper is the encoded image at the next step's noise level; otherwise the latents as they are.
    /// Consumes <paramref name="latents"/> when it returns a new tensor.
    /// </summary>
    public Tensor AfterStep(int step, Tensor latents, FlowMatchEulerScheduler scheduler)
    {
        if (_mask is null) return latents;
        using var scope = NewDisposeScope();
        bool last = step == scheduler.NumInferenceSteps - 1;
        var proper = last ? _imageLatents!.alias() : scheduler.ScaleNoise(_imageLatents!, step + 1, _noise!);
        var blended = ((1 - _mask) * proper + _mask * latents).to(latents.dtype);
        latents.Dispose();
        return blended.MoveToOuterDisposeScope();
    }

    /// <summary>Whether the pipeline decodes as diffusers' inpainting pipeline does (see <see cref="Models.Vae.AutoencoderKLDecoder.Decode"/>).</summary>
    public bool Inpainting => _mask is not null;

    public void Dispose()
    {
        Initial.Dispose();
        _imageLatents?.Dispose();
        _noise?.Dispose();
        _mask?.Dispose();
    }
}
