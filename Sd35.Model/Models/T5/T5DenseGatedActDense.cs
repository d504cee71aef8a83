using Sd35.Layers;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.T5;

/// <summary>
/// T5 v1.1's gated feed-forward: wo(act(wi_0 x) ⊙ wi_1 x), no biases, act from <c>dense_act_fn</c> (gelu_new,
/// the tanh GELU, for SD3's T5-XXL). wi_0 / wi_1 are column-parallel (each rank computes its slice of d_ff,
/// which the element-wise gate keeps local) and wo row-parallel.
/// All three are in the model dtype. transformers keeps <c>wo</c> in float32 only when loading in float16
/// (<c>_keep_in_fp32_modules</c>); in bfloat16, whose range is float32's, it is bf16 like the rest, as here.
/// </summary>
sealed class T5DenseGatedActDense : nn.Module<Tensor, Tensor>
{
    readonly Func<Tensor, Tensor> _activation;
    public readonly ColumnParallelLinear wi_0;
    public readonly ColumnParallelLinear wi_1;
    public readonly RowParallelLinear wo;

    public T5DenseGatedActDense(T5Config config, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(T5DenseGatedActDense))
    {
        _activation = Activations.FromName(config.DenseActFn);
        wi_0 = new ColumnParallelLinear(config.DModel, config.DFf, tp, hasBias: false, dtype: dtype, device: device);
        wi_1 = new ColumnParallelLinear(config.DModel, config.DFf, tp, hasBias: false, dtype: dtype, device: device);
        wo = new RowParallelLinear(config.DFf, config.DModel, tp, RowReduction.AllReduce, hasBias: false, dtype: dtype, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var gate = wi_0.forward(hidden);
        var gated = _activation(gate) * wi_1.forward(hidden);
        Kernels.RecordElementwise("gated_activation", gated, 9, gate, gate);
        return wo.forward(gated).MoveToOuterDisposeScope();
    }
}
