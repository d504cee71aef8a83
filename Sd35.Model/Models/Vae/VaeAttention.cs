using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Sd35.Layers;

namespace Sd35.Models.Vae;

/// <summary>
/// The VAE mid-block self-attention (diffusers <c>Attention</c> with one head of all channels, a GroupNorm in front,
/// a residual connection and rescale factor 1): every pixel attends to every pixel of the latent grid.
/// <para>
/// Channel tensor parallelism: the normalized shards are gathered so every rank has the full channels (one head
/// cannot be split by channel); each rank then answers only its share of the queries (a contiguous run of
/// pixels) against all keys and values, and an all-to-all turns "my pixels, all channels" into "all pixels, my
/// channels" for the residual. The attention itself, the dominant cost, is therefore split tp ways too.
/// </para>
/// </summary>
sealed class VaeAttention : nn.Module<Tensor, Tensor>
{
    readonly IProcessGroup _tp;
    public readonly ChannelParallelGroupNorm group_norm;
    public readonly Linear to_q;
    public readonly Linear to_k;
    public readonly Linear to_v;
    public readonly ModuleList<Linear> to_out;

    public VaeAttention(long channels, int groups, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(VaeAttention))
    {
        _tp = tp;
        group_norm = new ChannelParallelGroupNorm(groups, channels, AutoencoderKLConfig.NormEps, tp, dtype, device);
        to_q = WeightInit.Linear(channels, channels, hasBias: true, dtype, device);
        to_k = WeightInit.Linear(channels, channels, hasBias: true, dtype, device);
        to_v = WeightInit.Linear(channels, channels, hasBias: true, dtype, device);
        to_out = nn.ModuleList(WeightInit.Linear(channels, channels, hasBias: true, dtype, device));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        long batch = input.shape[0], height = input.shape[2], width = input.shape[3];
        long pixels = height * width;
        if (pixels % _tp.Size != 0)
            throw new ArgumentException($"{height}×{width} latent pixels do not split into {_tp.Size} equal query ranges");
        long localPixels = pixels / _tp.Size;

        // Tensors here are at most channels × pixels (32 MiB in fp32 for a 1024² image), so a scope is enough.
        using var scope = NewDisposeScope();
        var normed = _tp.AllGather(group_norm.forward(input), 1);
        var tokens = normed.flatten(2).transpose(1, 2);                        // [B, HW, C]
        var queryTokens = tokens.narrow(1, _tp.Rank * localPixels, localPixels);
        // One head: [B, 1, tokens, C]; SDPA's default scale 1/sqrt(C) is diffusers' head_dim scale.
        var q = Kernels.Linear(queryTokens, to_q.weight, to_q.bias).unsqueeze(1);
        var k = Kernels.Linear(tokens, to_k.weight, to_k.bias).unsqueeze(1);
        var v = Kernels.Linear(tokens, to_v.weight, to_v.bias).unsqueeze(1);
        var attended = Kernels.Attention(q, k, v).squeeze(1);
        var projected = Kernels.Linear(attended, to_out[0].weight, to_out[0].bias);                           // [B, HW/tp, C]
        var mine = _tp.AllToAll(projected, scatterDim: 2, gatherDim: 1);      // [B, HW, C/tp]
        var output = mine.transpose(1, 2).reshape(batch, -1, height, width) + input;
        Kernels.RecordElementwise("residual", output, 1, mine, input);
        return output.MoveToOuterDisposeScope();
    }
}
