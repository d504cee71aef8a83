using Sd35.Layers;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Models.Clip;

/// <summary>fc1 → activation (<c>hidden_act</c>) → fc2; fc1 column-parallel, fc2 row-parallel.</summary>
sealed class ClipMlp : nn.Module<Tensor, Tensor>
{
    readonly Func<Tensor, Tensor> _activation;
    public readonly ColumnParallelLinear fc1;
    public readonly RowParallelLinear fc2;

    public ClipMlp(ClipTextConfig config, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(ClipMlp))
    {
        _activation = Activations.FromName(config.HiddenAct);
        fc1 = new ColumnParallelLinear(config.HiddenSize, config.IntermediateSize, tp, dtype: dtype, device: device);
        fc2 = new RowParallelLinear(config.IntermediateSize, config.HiddenSize, tp, RowReduction.AllReduce, dtype: dtype, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var activated = _activation(fc1.forward(hidden));
        Kernels.RecordElementwise("activation", activated, 4, activated);
        return fc2.forward(activated).MoveToOuterDisposeScope();
    }
}
