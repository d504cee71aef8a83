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
/// The encoding and decoding stages, written once for one device or for the tensor-parallel group of a mesh: each
/// runs on a stage's view of the rank (<see cref="MeshRank.ForStage"/>; <see cref="MeshRank.Single"/> for one device)
/// and gets its models (sharded over its <c>tp</c> when the group is larger than one) from the pipeline's store, which
/// loads them for the stage and releases them after it, or keeps them between generations (<see cref="ModelResidency"/>).
/// </summary>
static class PipelineStages
{
    /// <summary>Tokenizes and encodes the prompt (and the negative prompt under guidance) with CLIP-L, CLIP-G and T5.</summary>
    public static EncodedPrompt Encode(PipelineComponents components, ScalarType dtype, GenerationRequest request, MeshRank stage, StageTimings? timings) =>
        Encode(components, dtype, request, stage, timings, PipelineModels.Staged, observer: null);

    /// <param name="storage">how the encoders' linears hold their weights (null: in <paramref name="dtype"/>)</param>
    internal static EncodedPrompt Encode(PipelineComponents components, ScalarType dtype, GenerationRequest request, MeshRank stage, StageTimings? timings,
        PipelineModels models, IGenerationObserver? observer, WeightStorage? storage = null)
    {
        var watch = Stopwatch.StartNew();
        var tokenizers = components.Tokenizers();
        using var clipL = models.Get(stage, "text_encoder", r => ClipTextModel.FromFolder(components.TextEncoder, r, dtype, storage), observer);
        using var clipG = models.Get(stage, "text_encoder_2", r => ClipTextModel.FromFolder(components.TextEncoder2, r, dtype, storage), observer);
        using var t5 = components.TextEncoder3 is not { } t5Folder || request.NoT5 ? (ModelLease<T5EncoderModel>?)null
            : models.Get(stage, "text_encoder_3", r => T5EncoderModel.FromFolder(t5Folder, r, dtype, storage), observer);
        if (timings is not null) timings.LoadSeconds += watch.Elapsed.TotalSeconds;

        using var timed = Timed(GenerationStage.TextEncoding, timings);
        var encoder = new Sd3PromptEncoder(clipL.Model, clipG.Model, t5?.Model, components.TransformerConfig.JointAttentionDim, tokenizers) { Timings = timings };
        var prompt = Sd3Prompt.Single(request.Prompt, request.NegativePrompt, request.Prompt2, request.Prompt3, request.NegativePrompt2, request.NegativePrompt3);
        return encoder.Encode(prompt, request.UsesClassifierFreeGuidance, request.MaxSequenceLength, numImagesPerPrompt: request.NumImagesPerPrompt);
    }

    /// <summary>
    /// The image-to-image pipelines' start: the image ([1, 3, H, W] in [0, 1]) mapped to [-1, 1] (diffusers' image
    /// processor), encoded, sampled from the posterior with <paramref name="eps"/>, and scaled into the transformer's
    /// latent space: <c>(sample − shift) · scaling</c> [1, C, H/f, W/f] in the pipeline's dtype.
    /// </summary>
    internal static Tensor EncodeImage(PipelineComponents components, ScalarType dtype, Tensor image, Tensor eps, MeshRank stage,
        StageTimings? timings, PipelineModels models, IGenerationObserver? observer, WeightStorage? storage = null)
    {
        return RunStage(models, stage, "vae_encoder", r => AutoencoderKLEncoder.FromFolder(components.Vae, r, dtype, storage?.FloatOnly), observer, timings,
            GenerationStage.ImageEncoding, vae =>
            {
                using var scope = NewDisposeScope();
                var normalized = (image * 2.0 - 1.0).to(dtype, stage.Device);
                using var posterior = vae.Encode(normalized);
                // eps is drawn in the pipeline's dtype (diffusers' stream); a VAE computing in another samples in its own.
                return vae.Scale(posterior.Sample(eps.to(dtype))).MoveToOuterDisposeScope();
            });
    }

    /// <summary>Un-scales and decodes the final latents; returns the image in [0, 1] as float32 on the CPU.</summary>
    public static Tensor Decode(PipelineComponents components, ScalarType dtype, Tensor latents, MeshRank stage, StageTimings? timings)
    {
        var (image, nonFinite) = DecodeAndCount(components, dtype, latents, stage, timings, PipelineModels.Staged, observer: null);
        if (nonFinite is { } counts)
        {
            image.Dispose();
            throw FiniteCheck.Error(counts, FiniteCheck.VaeDecoding);
        }
        return image;
    }

    /// <summary>The image in [0, 1] and what the finite check of the decoder's output found (before the clamp, which would hide infinities).</summary>
    /// <param name="addShift">false reproduces diffusers' inpainting pipeline, which unscales by <c>latents / scaling_factor</c> alone</param>
    internal static (Tensor Image, NonFiniteCounts? NonFinite) DecodeAndCount(PipelineComponents components, ScalarType dtype, Tensor latents, MeshRank stage,
        StageTimings? timings, PipelineModels models, IGenerationObserver? observer, bool addShift = true, WeightStorage? storage = null)
    {
        return RunStage(models, stage, "vae", r => AutoencoderKLDecoder.FromFolder(components.Vae, r, dtype, storage?.FloatOnly), observer, timings,
            GenerationStage.VaeDecoding, vae =>
            {
                using var scope = NewDisposeScope();
                var decoded = vae.Decode(latents.to(dtype, stage.Device), addShift);
                var nonFinite = FiniteCheck.Count(decoded);
                var image = ShapeOnly.ToHost(ImageOutput.ToUnitRange(decoded).to(float32));
                return (image.MoveToOuterDisposeScope(), nonFinite);
            });
    }

    /// <summary>
    /// A stage with one model: leases it from the store (tensor parallel over <paramref name="rank"/>'s tp; the wait and
    /// load timed as loading), runs <paramref name="run"/> on it (timed as <paramref name="stage"/>) and releases the lease.
    /// </summary>
    static TResult RunStage<TModel, TResult>(PipelineModels models, MeshRank rank, string component,
        Func<MeshRank, TModel> load, IGenerationObserver? observer, StageTimings? timings, GenerationStage stage, Func<TModel, TResult> run)
        where TModel : class, IDisposable
    {
        var watch = Stopwatch.StartNew();
        using var lease = models.Get(rank, component, load, observer);
        if (timings is not null) timings.LoadSeconds += watch.Elapsed.TotalSeconds;
        using var timed = Timed(stage, timings);
        return run(lease.Model);
    }

    /// <summary>The stage's section, timed into <paramref name="timings"/> when given: the span stamped is the span timed.</summary>
    static IDisposable Timed(GenerationStage stage, StageTimings? timings) =>
        Instrumentation.InSection(stage.Section(), timings is null ? null : seconds => timings.Record(stage, seconds));
}
