using Sd35.Models.Transformer;
using Sd35.Pipeline;
using Sd35.Tensors;
using Sd35.Tensors.Checkpoints;
using Sd35.Tokenizers;
using Sd35.Tools.Synthetic;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Perf.Harness;

/// <summary>
/// The CI-scale pipeline the measured perf tests run: the tiny reference text encoders and VAE of
/// fixtures/reference, and a small MMDiT sized like the <c>mmdit_small</c> benchmark (4 blocks × 8 heads × 64,
/// hidden 512, qk RMSNorm) but fitted to those encoders (joint_attention_dim 64, pooled 56), with random weights
/// drawn from a fixed seed and written once per process as a diffusers <c>transformer/</c> folder. The transformer is
/// big enough that the denoising steps are GEMM-bound, as the real model's are; the encoders and VAE stay tiny
/// (their sections measure overheads, not arithmetic). 256² images: the tiny VAE has scale factor 4, so 64×64
/// latents and 32×32 = 1024 image tokens, as mmdit_small.
/// </summary>
public static class CiScaleModel
{
    public const string Scale = "ci_small";
    public const int Width = 256, Height = 256, Steps = 4, MaxSequenceLength = 32;

    public static SD3TransformerConfig TransformerConfig { get; } = new()
    {
        SampleSize = 64, PatchSize = 2, InChannels = 16, OutChannels = 16, NumLayers = 4, AttentionHeadDim = 64,
        NumAttentionHeads = 8, JointAttentionDim = 64, CaptionProjectionDim = 512, PooledProjectionDim = 56,
        PosEmbedMaxSize = 32, QkNorm = "rms_norm",
    };

    static readonly Lazy<string> TransformerFolderOnce = new(WriteTransformer);

    /// <summary>The components; the transformer folder is made on first use under the temp folder and reused.</summary>
    public static PipelineComponents Components()
    {
        var reference = RepoPaths.Fixtures("reference");
        return new PipelineComponents(
            new ModelFolder(TransformerFolderOnce.Value),
            new ModelFolder(Path.Combine(reference, "vae", "vae_tiny")),
            new ModelFolder(Path.Combine(reference, "text_encoder", "clip_l_tiny")),
            new ModelFolder(Path.Combine(reference, "text_encoder", "clip_g_tiny")),
            new ModelFolder(Path.Combine(reference, "text_encoder", "t5_tiny")),
            () => TokenizerSet.Default(),
            FlowMatchEulerSchedulerConfig.Sd35,
            "CI-scale perf model (tiny reference encoders and VAE, small random MMDiT)");
    }

    public static GenerationRequest Request(string prompt) => new()
    {
        Prompt = prompt, Steps = Steps, GuidanceScale = 3.5, Seed = 0, Width = Width, Height = Height, MaxSequenceLength = MaxSequenceLength,
    };

    static string WriteTransformer()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"sd35-perf-mmdit-{Environment.ProcessId}", "transformer");
        Directory.CreateDirectory(folder);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(Path.GetDirectoryName(folder)!, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
        var config = TransformerConfig;
        File.WriteAllText(Path.Combine(folder, "config.json"), System.Text.Json.JsonSerializer.Serialize(config));
        using var scope = NewDisposeScope();
        using var model = new SD3Transformer2DModel(config);
        RandomWeights.Fill(model, seed: 0);
        var tensors = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.contiguous());
        SafetensorsWriter.Write(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), tensors);
        return folder;
    }
}
