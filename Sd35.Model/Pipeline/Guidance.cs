using static TorchSharp.torch;

namespace Sd35.Pipeline;

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
