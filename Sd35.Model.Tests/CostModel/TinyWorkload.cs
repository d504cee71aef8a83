using Sd35.CostModeling;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using TorchSharp;

namespace Sd35.Tests.CostModel;

/// <summary>
/// A workload small enough to run for real on the CPU in a second on every rank of t3k_cfg2_sp2_tp2, with 3 heads so
/// that tp = 2 pads them (the padding path is counted too), a 2-block transformer (one ordinary, one context-pre-only),
/// T5 on, and a two-stage VAE with its mid-block attention.
/// </summary>
internal static class TinyWorkload
{
    public static Workload Create(bool t5 = true) => new()
    {
        Transformer = new SD3TransformerConfig
        {
            SampleSize = 8, PatchSize = 2, InChannels = 16, NumLayers = 2, AttentionHeadDim = 8, NumAttentionHeads = 3,
            JointAttentionDim = 32, CaptionProjectionDim = 24, PooledProjectionDim = 32, OutChannels = 16, PosEmbedMaxSize = 16, QkNorm = "rms_norm",
        },
        ClipL = new ClipTextConfig(100, 16, 32, 16, 2, 4, 77, "quick_gelu", 1e-5, 99),
        ClipG = new ClipTextConfig(100, 16, 32, 16, 2, 4, 77, "gelu", 1e-5, 99),
        T5 = t5 ? new T5Config(100, 32, 8, 64, 2, 4, 32, 128, 1e-6, "gated-gelu", "gelu_new") : null,
        T5Tokens = 16,
        Vae = new AutoencoderKLConfig
        {
            LatentChannels = 16, BlockOutChannels = [16, 16], LayersPerBlock = 1, NormNumGroups = 4, UseQuantConv = false, UsePostQuantConv = false,
        },
        Width = 32,
        Height = 32,
        DType = torch.ScalarType.Float32,
    };
}
