using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// One denoising step's model evaluation with guidance applied: given the latents and the timestep, the
/// velocity the scheduler integrates. The pipeline does not care whether the conditional and unconditional
/// passes run batched on one device or on two cfg submeshes of a mesh.
/// </summary>
public interface IGuidedDenoiser : IDisposable
{
    /// <param name="latents">[B, C, h, w]</param>
    /// <param name="timestep">the scheduler's timestep (0..1000 scale)</param>
    /// <param name="skipLayers">whether skip-layer guidance applies at this step</param>
    Tensor Predict(Tensor latents, float timestep, bool skipLayers);
}

/// <summary>The guidance arithmetic shared by every denoiser, exactly as diffusers' SD3 pipeline writes it.</summary>
public static class Guidance
{
    /// <summary>uncond + s·(cond − uncond)</summary>
    public static Tensor Classifier(Tensor uncond, Tensor cond, double scale)
    {
        using var difference = cond - uncond;
        using var scaled = difference * scale;
        return uncond + scaled;
    }

    /// <summary>guided + (cond − skipped)·scale</summary>
    public static Tensor SkipLayer(Tensor guided, Tensor cond, Tensor skipped, double scale)
    {
        using var difference = cond - skipped;
        using var scaled = difference * scale;
        return guided + scaled;
    }
}
