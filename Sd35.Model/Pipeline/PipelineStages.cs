using System.Diagnostics;
using Sd35.Mesh;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Vae;
using static TorchSharp.torch;
using Sd35.Profiling;

namespace Sd35.Pipeline;

/// <summary>
/// The encoding and decoding stages, written once for one device or for the tensor-parallel group of a mesh:
/// each loads its models (sharded over <c>tp</c> when the group is larger than one), runs, and releases them.
/// </summary>
public static class PipelineStages
{
    /// <summary>Tokenizes and encodes the prompt (and the negative prompt under guidance) with CLIP-L, CLIP-G and T5.</summary>
    public static EncodedPrompt Encode(PipelineComponents components, ScalarType dtype, GenerationRequest request, IProcessGroup tp, Device device, StageTimings? timings)
    {
        var watch = Stopwatch.StartNew();
        var tokenizers = components.Tokenizers();
        var rank = RankContext.TensorParallel(tp, device);
        using var clipL = ClipTextModel.FromFolder(components.TextEncoder, rank, dtype);
        using var clipG = ClipTextModel.FromFolder(components.TextEncoder2, rank, dtype);
        using var t5 = components.TextEncoder3 is null ? null : T5EncoderModel.FromFolder(components.TextEncoder3, rank, dtype);
        if (timings is not null) timings.LoadSeconds += watch.Elapsed.TotalSeconds;

        watch.Restart();
        var encoder = new Sd3PromptEncoder(clipL, clipG, t5, components.TransformerConfig.JointAttentionDim, tokenizers) { Timings = timings };
        var prompt = Sd3Prompt.Single(request.Prompt, request.NegativePrompt, request.Prompt2, request.Prompt3);
        var encoded = encoder.Encode(prompt, request.UsesClassifierFreeGuidance, request.MaxSequenceLength);
        if (timings is not null) timings.EncodingSeconds = watch.Elapsed.TotalSeconds;
        return encoded;
    }

    /// <summary>Un-scales and decodes the final latents; returns the image in [0, 1] as float32 on the CPU.</summary>
    public static Tensor Decode(PipelineComponents components, ScalarType dtype, Tensor latents, IProcessGroup tp, Device device, StageTimings? timings)
    {
        var watch = Stopwatch.StartNew();
        using var vae = AutoencoderKLDecoder.FromFolder(components.Vae, RankContext.TensorParallel(tp, device), dtype);
        if (timings is not null) timings.LoadSeconds += watch.Elapsed.TotalSeconds;
        watch.Restart();
        using var scope = NewDisposeScope();
        var decoded = vae.Decode(latents.to(device));
        FiniteCheck.Ensure(decoded, FiniteCheck.VaeDecoding);     // before the clamp, which would hide infinities
        var image = ShapeOnly.ToHost(ImageOutput.ToUnitRange(decoded).to(float32));
        if (timings is not null) timings.DecodingSeconds = watch.Elapsed.TotalSeconds;
        return image.MoveToOuterDisposeScope();
    }
}
