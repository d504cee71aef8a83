namespace Sd35.Profiling;

/// <summary>What an operation mostly is, for the cost model: each kind runs at its own rate on an accelerator.</summary>
public enum OpKind
{
    /// <summary>Matrix multiplication with a weight (linear layers).</summary>
    Gemm,
    /// <summary>Softmax attention of queries over keys (the two GEMMs and the softmax of a fused kernel).</summary>
    Attention,
    /// <summary>Convolution.</summary>
    Conv,
    /// <summary>LayerNorm, RMSNorm, GroupNorm.</summary>
    Norm,
    /// <summary>Element-wise arithmetic, activations, residuals, casts and gathers of rows.</summary>
    Elementwise,
}
