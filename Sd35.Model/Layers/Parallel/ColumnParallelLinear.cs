using Sd35.Mesh;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Layers.Parallel;

/// <summary>
/// A linear layer whose output features are split across the tensor-parallel group (Megatron's column
/// parallel): each rank holds rows [r·out/tp, (r+1)·out/tp) of the weight (or, with <c>chunks</c>, its slice of
/// each chunk) and produces that slice of the output from the full input. No communication. On one device it
/// is an ordinary <c>nn.Linear</c>; parameter names are <c>weight</c> and <c>bias</c>, as in the checkpoint.
/// </summary>
public sealed class ColumnParallelLinear : StoredWeightLinear, IShardedParameters
{
    readonly ShardLayout _outLayout;
    readonly long _paddedIn;
    readonly bool _whole;
    public Parameter? bias;

    public long InFeatures { get; }
    public long LocalOutFeatures { get; }

    /// <param name="paddedOut">pad the output features with zero rows to this size before sharding (0: no padding)</param>
    /// <param name="paddedIn">pad the input features with zero columns to this size (the input arrives padded)</param>
    /// <param name="chunks">the output is this many equal chunks; each rank gets its slice of every chunk</param>
    public ColumnParallelLinear(long inFeatures, long outFeatures, IProcessGroup tp, bool hasBias = true,
        long paddedOut = 0, long paddedIn = 0, int chunks = 1, ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base(nameof(ColumnParallelLinear), [outFeatures, inFeatures], new ShardLayout(0, tp.Rank, tp.Size, paddedOut, chunks).LocalSize(outFeatures),
            paddedIn > 0 ? paddedIn : inFeatures, dtype, device)
    {
        _outLayout = new ShardLayout(0, tp.Rank, tp.Size, paddedOut, chunks);
        _paddedIn = paddedIn;
        _whole = tp.Size == 1 && (paddedOut == 0 || paddedOut == outFeatures) && (paddedIn == 0 || paddedIn == inFeatures);
        InFeatures = WeightShape[1];
        LocalOutFeatures = WeightShape[0];
        bias = hasBias ? new Parameter(empty(LocalOutFeatures, dtype, device), requires_grad: false) : null;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => Linear(input, bias);

    public bool HoldsWhole(string parameterName) => _whole;

    public Tensor? ShardFromFull(string parameterName, Tensor full)
    {
        if (parameterName == "weight" && _paddedIn > full.shape[1])
        {
            using var paddedIn = new ShardLayout(1, 0, 1, _paddedIn).Apply(full);
            return _outLayout.Apply(paddedIn);
        }
        return _outLayout.Apply(full);
    }

    /// <summary>Rows are never cut, so a rank holds blocks whenever the (padded) input row is whole blocks.</summary>
    public override bool CanHoldBlocks(GgmlType type, long fullRowLength) => WholeBlocks(type, fullRowLength) && WholeBlocks(type, InFeatures);

    public override QuantizedWeight ShardBlocks(QuantizedWeight full)
    {
        // Zero bytes are zero values in every packed format (blocks of scale 0, fp8 +0), so padding bytes pads values with zeros.
        using var paddedIn = new ShardLayout(1, 0, 1, GgmlBlocks.BytesOf(full.Type, InFeatures)).Apply(full.Blocks);
        return QuantizedWeight.FromBlocks(full.Type, WeightShape, _outLayout.Apply(paddedIn));
    }
}
