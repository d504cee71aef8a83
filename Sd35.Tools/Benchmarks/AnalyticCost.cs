using Sd35.Models.Transformer;

namespace Sd35.Tools.Benchmarks;

/// <summary>
/// The analytic FLOP count the perf reports divide by. Per token and joint block: q, k, v and output projections
/// 8·D², MLP 16·D² (4·D hidden), for both streams together over the joint sequence; attention 4·n·D per query
/// token (QKᵀ and PV). Norms, modulation, GELU and the conditioning linears (&lt; 0.1 %) are left out.
/// SD3.5 Large at 1024² (4096 image + 333 prompt tokens): 819.5 GFLOP a block, 31.1 TFLOP a forward.
/// </summary>
public static class AnalyticCost
{
    /// <summary>One joint block over n tokens of width d: projections and MLP 24·d²·n, attention 4·n²·d.</summary>
    public static double JointBlockFlops(double d, double n) => 24.0 * d * d * n + 4.0 * n * n * d;

    /// <summary>One transformer forward of <paramref name="batch"/> images of <paramref name="imageTokens"/> tokens with <paramref name="promptTokens"/> prompt tokens.</summary>
    public static double TransformerForwardFlops(SD3TransformerConfig config, long imageTokens, long promptTokens, int batch = 1) =>
        batch * config.NumLayers * JointBlockFlops(config.InnerDim, imageTokens + promptTokens);
}
