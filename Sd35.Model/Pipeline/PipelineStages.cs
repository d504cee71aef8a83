using System.Diagnostics;
using Sd35.Mesh;
using Sd35.Tensors.Quantization;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Vae;
using static TorchSharp.torch;
using Sd35.Profiling;

namespace Sd35.Pipeline;

/// <summary>
/// The encoding and decoding stages, written once for one device or for the tensor-parallel group of a mesh:
/// each gets its models (sharded over <c>tp</c> when the group is larger than one) from the pipeline's store, which
/// loads them for the stage and releases them after it, or keeps them between generations (<see cref="ModelResidency"/>).
/// </summary>
public static class PipelineStages
{
    /// <summary>Tokenizes and encodes the prompt (and the negative prompt under guidance) with CLIP-L, CLIP-G and T5.</summary>
    public static EncodedPrompt Encode(PipelineComponents components, ScalarType dtype, GenerationRequest request, IProcessGroup tp, Device device, StageTimings? timings) =>
        Encode(components, dtype, request, tp, device, timings, PipelineModels.Staged, deviceId: 0);

    /// <param name="storage">how the encoders' linears hold their weights (null: in <paramref name="dtype"/>)</param>
    internal static EncodedPrompt Encode(PipelineComponents components, ScalarType dtype, GenerationRequest request, IProcessGroup tp, Device device, StageTimings? timings,
        PipelineModels models, int deviceId, WeightStorage? storage = null)
    {
        var watch = Stopwatch.StartNew();
        var tokenizers = components.Tokenizers();
        var rank = RankContext.TensorParallel(tp, device);
        using var clipL = models.Get(deviceId, "text_encoder", rank, r => ClipTextModel.FromFolder(components.TextEncoder, r, dtype, storage));
        using var clipG = models.Get(deviceId, "text_encoder_2", rank, r => ClipTextModel.FromFolder(components.TextEncoder2, r, dtype, storage));
        using var t5 = components.TextEncoder3 is not { } t5Folder || request.NoT5 ? (ModelLease<T5EncoderModel>?)null
            : models.Get(deviceId, "text_encoder_3", rank, r => T5EncoderModel.FromFolder(t5Folder, r, dtype, storage));
        if (timings is not null) timings.LoadSeconds += watch.Elapsed.TotalSeconds;

        watch.Restart();
        var encoder = new Sd3PromptEncoder(clipL.Model, clipG.Model, t5?.Model, components.TransformerConfig.JointAttentionDim, tokenizers) { Timings = timings };
        var prompt = Sd3Prompt.Single(request.Prompt, request.NegativePrompt, request.Prompt2, request.Prompt3, request.NegativePrompt2, request.NegativePrompt3);
        var encoded = encoder.Encode(prompt, request.UsesClassifierFreeGuidance, request.MaxSequenceLength, numImagesPerPrompt: request.NumImagesPerPrompt);
        if (timings is not null) timings.EncodingSeconds = watch.Elapsed.TotalSeconds;
        return encoded;
    }

    /// <summary>
    /// The image-to-image pipelines' start: the image ([1, 3, H, W] in [0, 1]) mapped to [-1, 1] (diffusers' image
    /// processor), encoded, sampled from the posterior with <paramref name="eps"/>, and scaled into the transformer's
    /// latent space: <c>(sample − shift) · scaling</c> [1, C, H/f, W/f] in the pipeline's dtype.
    /// </summary>
    internal static Tensor EncodeImage(PipelineComponents components, ScalarType dtype, Tensor image, Tensor eps, IProcessGroup tp, Device device,
        StageTimings? timings, PipelineModels models, int deviceId)
    {
        return RunStage(models, deviceId, "vae_encoder", tp, device, r => AutoencoderKLEncoder.FromFolder(components.Vae, r, dtype), timings,
            (t, seconds) => t.ImageEncodingSeconds = seconds, vae =>
            {
                using var scope = NewDisposeScope();
                var normalized = (image * 2.0 - 1.0).to(dtype, device);
                using var posterior = vae.Encode(normalized);
                // eps is drawn in the pipeline's dtype (diffusers' stream); a VAE computing in another samples in its own.
                return vae.Scale(posterior.Sample(eps.to(dtype))).MoveToOuterDisposeScope();
            });
    }

    /// <summary>Un-scales and decodes the final latents; returns the image in [0, 1] as float32 on the CPU.</summary>
    public static Tensor Decode(PipelineComponents components, ScalarType dtype, Tensor latents, IProcessGroup tp, Device device, StageTimings? timings)
    {
        var (image, nonFinite) = DecodeAndCount(components, dtype, latents, tp, device, timings, PipelineModels.Staged, deviceId: 0);
        if (nonFinite is { } counts)
        {
            image.Dispose();
            throw FiniteCheck.Error(counts, FiniteCheck.VaeDecoding);
        }
        return image;
    }

    /// <summary>The image in [0, 1] and what the finite check of the decoder's output found (before the clamp, which would hide infinities).</summary>
    /// <param name="addShift">false reproduces diffusers' inpainting pipeline, which unscales by <c>latents / scaling_factor</c> alone</param>
    internal static (Tensor Image, NonFiniteCounts? NonFinite) DecodeAndCount(PipelineComponents components, ScalarType dtype, Tensor latents, IProcessGroup tp,
        Device device, StageTimings? timings, PipelineModels models, int deviceId, bool addShift = true)
    {
        return RunStage(models, deviceId, "vae", tp, device, r => AutoencoderKLDecoder.FromFolder(components.Vae, r, dtype), timings,
            (t, seconds) => t.DecodingSeconds = seconds, vae =>
            {
                using var scope = NewDisposeScope();
                var decoded = vae.Decode(latents.to(dtype, device), addShift);
                var nonFinite = FiniteCheck.Count(decoded);
                var image = ShapeOnly.ToHost(ImageOutput.ToUnitRange(decoded).to(float32));
                return (image.MoveToOuterDisposeScope(), nonFinite);
            });
    }

    /// <summary>
    /// A stage with one model: leases it from the store (tensor parallel over <paramref name="tp"/>; the wait and load
    /// timed as loading), runs <paramref name="run"/> on it (timed by <paramref name="record"/>) and releases the lease.
    /// </summary>
    static TResult RunStage<TModel, TResult>(PipelineModels models, int deviceId, string component, IProcessGroup tp, Device device,
        Func<RankContext, TModel> load, StageTimings? timings, Action<StageTimings, double> record, Func<TModel, TResult> run)
        where TModel : class, IDisposable
    {
        var watch = Stopwatch.StartNew();
        using var lease = models.Get(deviceId, component, RankContext.TensorParallel(tp, device), load);
        if (timings is not null) timings.LoadSeconds += watch.Elapsed.TotalSeconds;
        watch.Restart();
        var result = run(lease.Model);
        if (timings is not null) record(timings, watch.Elapsed.TotalSeconds);
        return result;
    }
}
