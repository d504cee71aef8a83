using Sd35.Profiling;
using Sd35.Errors;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// A cheap all-finite check (one reduction) at the points where NaN or infinity would otherwise flow silently into
/// an all-black PNG: the latents after every denoising step and the decoded image before it is returned.
/// </summary>
static class FiniteCheck
{
    public static readonly string Denoising = GenerationStage.Denoising.Label();
    public static readonly string VaeDecoding = GenerationStage.VaeDecoding.Label();

    /// <exception cref="NonFiniteException">naming the stage and step, with how many values are NaN or infinite</exception>
    /// <param name="byEveryRank">every rank checks the same values at this point (see <see cref="NonFiniteException.ByEveryRank"/>)</param>
    public static void Ensure(Tensor values, string stage, int? step = null, bool byEveryRank = false)
    {
        if (Count(values) is { } counts) throw Error(counts, stage, step, byEveryRank);
    }

    /// <summary>How many values are NaN and infinite, or null when all are finite (always null on the meta device).</summary>
    public static NonFiniteCounts? Count(Tensor values)
    {
        using var scope = NewDisposeScope();
        if (ShapeOnly.Is(values)) return null; // a shape-only (meta) run has no values to check
        if (isfinite(values).all().item<bool>()) return null;
        return new NonFiniteCounts(isnan(values).sum().item<long>(), isinf(values).sum().item<long>(), values.numel());
    }

    public static NonFiniteException Error(NonFiniteCounts counts, string stage, int? step = null, bool byEveryRank = false) =>
        new(stage, step, $"{counts.NaN} NaN and {counts.Infinite} infinite of {counts.Total} values (is --guidance too large, or a weight corrupt?)", byEveryRank);
}

/// <summary>What a finite check found: NaN and infinite values among <see cref="Total"/>.</summary>
readonly record struct NonFiniteCounts(long NaN, long Infinite, long Total)
{
    /// <summary>As three int64 values (NaN, infinite, total; all 0: finite), to hand a verdict to other devices.</summary>
    public static long[] Encode(NonFiniteCounts? counts) => counts is { } c ? [c.NaN, c.Infinite, c.Total] : [0, 0, 0];

    public static NonFiniteCounts? Decode(ReadOnlySpan<long> values) => values[2] == 0 ? null : new(values[0], values[1], values[2]);
}
