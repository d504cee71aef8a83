using Sd35.Profiling;
using Sd35.Errors;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// A cheap all-finite check (one reduction) at the points where NaN or infinity would otherwise flow silently into
/// an all-black PNG: the latents after every denoising step and the decoded image before it is returned.
/// </summary>
public static class FiniteCheck
{
    public const string Denoising = "denoising";
    public const string VaeDecoding = "vae decoding";

    /// <exception cref="NonFiniteException">naming the stage and step, with how many values are NaN or infinite</exception>
    /// <param name="byEveryRank">every rank checks the same values at this point (see <see cref="NonFiniteException.ByEveryRank"/>)</param>
    public static void Ensure(Tensor values, string stage, int? step = null, bool byEveryRank = false)
    {
        using var scope = NewDisposeScope();
        if (ShapeOnly.Is(values)) return; // a shape-only (meta) run has no values to check
        if (isfinite(values).all().item<bool>()) return;
        long nan = isnan(values).sum().item<long>();
        long inf = isinf(values).sum().item<long>();
        throw new NonFiniteException(stage, step, $"{nan} NaN and {inf} infinite of {values.numel()} values (is --guidance too large, or a weight corrupt?)", byEveryRank);
    }
}
