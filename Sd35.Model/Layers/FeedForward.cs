using Sd35.Layers.Parallel;
using Sd35.Mesh;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Layers;

/// <summary>The up-projection and tanh-approximated GELU of diffusers' <c>GELU</c> activation module (<c>net.0</c>).</summary>
sealed class GeluProjection : nn.Module<Tensor, Tensor>
{
    public ColumnParallelLinear proj;

    public GeluProjection(long dim, long inner, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(GeluProjection))
    {
        proj = new ColumnParallelLinear(dim, inner, tp, dtype: dtype, device: device);
        RegisterComponents();
    }

    /// <remarks>The GELU runs in place on the projection's output, which nothing else holds: the 4·D-wide hidden state is allocated once.</remarks>
    public override Tensor forward(Tensor x)
    {
        var hidden = proj.forward(x);
        hidden.gelu_(GELU.Approximate.tanh);
        Kernels.RecordElementwise("gelu", hidden, 8, hidden);
        return hidden;
    }
}

/// <summary>
/// diffusers' <c>FeedForward(activation_fn="gelu-approximate")</c> as a Megatron MLP: the up-projection is
/// column-parallel (each rank computes its quarter of the 4·D hidden units from the full input), the
/// down-projection row-parallel, and a ReduceScatter on tp sums the partial outputs and leaves each rank its
/// D/tp slice. Checkpoint names: <c>net.0.proj</c>, <c>net.2</c> (<c>net.1</c> is a dropout without weights).
/// </summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    public ModuleList<nn.Module<Tensor, Tensor>> net;

    public FeedForward(long dim, IProcessGroup tp, long multiplier = 4, ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base(nameof(FeedForward))
    {
        long inner = dim * multiplier;
        net = nn.ModuleList<nn.Module<Tensor, Tensor>>(
            new GeluProjection(dim, inner, tp, dtype, device),
            nn.Identity(),
            new RowParallelLinear(inner, dim, tp, RowReduction.ReduceScatter, dtype: dtype, device: device));
        RegisterComponents();
    }

    /// <param name="x">the full hidden state [B, n, D] (gathered on tp)</param>
    /// <returns>this rank's slice [B, n, D/tp]</returns>
    public override Tensor forward(Tensor x)
    {
        using var hidden = net[0].forward(x);
        return net[2].forward(hidden);
    }
}
