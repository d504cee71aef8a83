using Sd35.Layers;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.Clip;

/// <summary>
/// CLIP's causal multi-head self-attention. q/k/v are column-parallel and out_proj is row-parallel, so under
/// tensor parallelism each rank attends with its own heads and one AllReduce completes the output; on one
/// device they are plain linears. Scores are scaled by 1/√head_dim, which is SDPA's default scale.
/// </summary>
sealed class ClipAttention : nn.Module<Tensor, Tensor>
{
    readonly int _localHeads;
    public readonly ColumnParallelLinear q_proj;
    public readonly ColumnParallelLinear k_proj;
    public readonly ColumnParallelLinear v_proj;
    public readonly RowParallelLinear out_proj;

    public ClipAttention(ClipTextConfig config, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(ClipAttention))
    {
        int hidden = config.HiddenSize;
        _localHeads = AttentionHeads.Local(config.NumAttentionHeads, tp.Size, "CLIP attention");
        q_proj = new ColumnParallelLinear(hidden, hidden, tp, dtype: dtype, device: device);
        k_proj = new ColumnParallelLinear(hidden, hidden, tp, dtype: dtype, device: device);
        v_proj = new ColumnParallelLinear(hidden, hidden, tp, dtype: dtype, device: device);
        out_proj = new RowParallelLinear(hidden, hidden, tp, RowReduction.AllReduce, dtype: dtype, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var q = AttentionHeads.Split(q_proj.forward(hidden), _localHeads);
        var k = AttentionHeads.Split(k_proj.forward(hidden), _localHeads);
        var v = AttentionHeads.Split(v_proj.forward(hidden), _localHeads);
        // The text model always applies a causal mask (no padding mask is given in SD3), so each token sees
        // only itself and the tokens before it; that is what makes the EOS token a summary of the prompt.
        var attended = Kernels.Attention(q, k, v, causal: true);
        return out_proj.forward(AttentionHeads.Merge(attended)).MoveToOuterDisposeScope();
    }
}
