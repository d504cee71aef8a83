using Sd35.Layers;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using Sd35.Profiling;
using static TorchSharp.torch;

namespace Sd35.Models.T5;

/// <summary>
/// T5 self-attention: no biases, NO 1/√d_kv scaling of the scores (T5 folds it into the initialization), an
/// additive relative position bias, and no mask (SD3 lets the encoder attend to padding). The softmax runs in
/// float32 and is cast back, as in transformers. q/k/v are column-parallel and o row-parallel, so each rank
/// attends with its own heads; only the first layer owns the relative position table.
/// </summary>
sealed class T5Attention : nn.Module<Tensor, Tensor, Tensor>
{
    readonly int _localHeads;
    public readonly ColumnParallelLinear q;
    public readonly ColumnParallelLinear k;
    public readonly ColumnParallelLinear v;
    public readonly RowParallelLinear o;
    public readonly T5RelativeAttentionBias? relative_attention_bias;

    public T5Attention(T5Config config, bool hasRelativeAttentionBias, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(T5Attention))
    {
        _localHeads = AttentionHeads.Local(config.NumHeads, tp.Size, "T5 attention");
        q = new ColumnParallelLinear(config.DModel, config.InnerDim, tp, hasBias: false, dtype: dtype, device: device);
        k = new ColumnParallelLinear(config.DModel, config.InnerDim, tp, hasBias: false, dtype: dtype, device: device);
        v = new ColumnParallelLinear(config.DModel, config.InnerDim, tp, hasBias: false, dtype: dtype, device: device);
        o = new RowParallelLinear(config.InnerDim, config.DModel, tp, RowReduction.AllReduce, hasBias: false, dtype: dtype, device: device);
        relative_attention_bias = hasRelativeAttentionBias ? new T5RelativeAttentionBias(config, tp, dtype, device) : null;
        RegisterComponents();
    }

    /// <param name="positionBias">(1, local heads, tokens, tokens), from the first layer's table.</param>
    public override Tensor forward(Tensor hidden, Tensor positionBias)
    {
        using var scope = NewDisposeScope();
        var query = AttentionHeads.Split(q.forward(hidden), _localHeads);
        var key = AttentionHeads.Split(k.forward(hidden), _localHeads);
        var value = AttentionHeads.Split(v.forward(hidden), _localHeads);
        // Written out rather than SDPA: SDPA always scales by 1/√d (undoing it would round q) and would not
        // keep transformers' float32 softmax in bf16.
        long start = Instrumentation.Timestamp();
        var scores = matmul(query, key.transpose(-1, -2)) + positionBias;
        var weights = scores.to(float32).softmax(-1).to(scores.dtype);
        var attended = matmul(weights, value);
        Kernels.RecordAttention(query, key, value, attended, start: start);
        return o.forward(AttentionHeads.Merge(attended)).MoveToOuterDisposeScope();
    }
}
