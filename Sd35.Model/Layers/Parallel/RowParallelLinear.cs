using Sd35.Mesh;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Layers.Parallel;

/// <summary>How a row-parallel layer turns its partial sums into an output.</summary>
enum RowReduction
{
    /// <summary>Every rank gets the full output (AllReduce).</summary>
    AllReduce,
    /// <summary>Rank r gets its slice of the output features (ReduceScatter on the last dimension).</summary>
    ReduceScatter,
}

/// <summary>
/// A linear layer whose input features are split across the tensor-parallel group (Megatron's row
/// parallel): each rank multiplies its input slice by its weight columns, and the partial sums are reduced
/// with the named collective. The bias is added once, after the reduction. On one device it is an ordinary
/// <c>nn.Linear</c>; parameter names are <c>weight</c> and <c>bias</c>, as in the checkpoint.
/// </summary>
sealed class RowParallelLinear : StoredWeightLinear, IShardedParameters
{
    readonly IProcessGroup _tp;
    readonly ShardLayout _inLayout;
    readonly ShardLayout _biasLayout;
    readonly RowReduction _reduction;
    readonly bool _whole;
    public Parameter? bias;

    /// <param name="paddedIn">pad the input features with zero columns to this size before sharding (0: none)</param>
    public RowParallelLinear(long inFeatures, long outFeatures, IProcessGroup tp, RowReduction reduction, bool hasBias = true,
        long paddedIn = 0, ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base(nameof(RowParallelLinear), [outFeatures, inFeatures], outFeatures, new ShardLayout(1, tp.Rank, tp.Size, paddedIn).LocalSize(inFeatures), dtype, device)
    {
        _tp = tp;
        _reduction = reduction;
        _whole = tp.Size == 1 && (paddedIn == 0 || paddedIn == inFeatures);
        _inLayout = new ShardLayout(1, tp.Rank, tp.Size, paddedIn);
        // After a ReduceScatter each rank owns a slice of the output, so it holds that slice of the bias.
        _biasLayout = reduction == RowReduction.ReduceScatter ? new ShardLayout(0, tp.Rank, tp.Size) : new ShardLayout(0, 0, 1);
        bias = hasBias ? new Parameter(empty(_biasLayout.LocalSize(outFeatures), dtype, device), requires_grad: false) : null;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        // A group of one has nothing to reduce: the bias goes into the GEMM (addmm), as in nn.Linear.
        if (_tp.Size == 1) return Linear(input, bias);
        using var partial = Linear(input);
        var reduced = _reduction == RowReduction.AllReduce ? _tp.AllReduce(partial) : _tp.ReduceScatter(partial, -1);
        if (bias is null) return reduced;
        using (reduced)
        {
            var output = reduced + bias;
            Kernels.RecordElementwise("bias", output, 1, reduced);
            return output;
        }
    }

    public bool HoldsWhole(string parameterName) => _whole;

    public Tensor? ShardFromFull(string parameterName, Tensor full) =>
        parameterName == "weight" ? _inLayout.Apply(full) : _biasLayout.Apply(full);

    /// <summary>
    /// The input features are cut at multiples of the local width, so a rank holds blocks when that width is whole
    /// blocks (the padding then is whole zero blocks too).
    /// </summary>
    public override bool CanHoldBlocks(GgmlType type, long fullRowLength) => WholeBlocks(type, fullRowLength) && WholeBlocks(type, WeightShape[1]);

    public override QuantizedWeight ShardBlocks(QuantizedWeight full) =>
        QuantizedWeight.FromBlocks(full.Type, WeightShape, InBlockBytes(_inLayout, full.Type).Apply(full.Blocks));
}
