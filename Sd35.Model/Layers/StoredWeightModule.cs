using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Layers;

/// <summary>
/// A layer whose <c>weight</c> is held in a storage format (fp32, bf16, fp16, fp8 or ggml blocks) apart from the dtype
/// it computes in, and expanded to the compute dtype where it is used (<see cref="IStoredWeight"/>): the linears
/// (<see cref="StoredWeightLinear"/>, the whole weight per call) and the embedding tables (<see cref="EmbeddingTable"/>,
/// only the rows looked up). The storage lives here once, so both hold, load and expand a weight the same way. The
/// parameter keeps the checkpoint's name, <c>weight</c>: a float weight of its dtype, or for a packed format
/// (<see cref="PackedFormat"/>) its bytes, uint8 [rows, bytes per row] (fp8: one byte per value, the weight's shape).
/// </summary>
public abstract class StoredWeightModule : nn.Module<Tensor, Tensor>, IStoredWeight
{
    public Parameter weight;

    /// <param name="fullShape">the checkpoint tensor's shape, before padding and cutting</param>
    /// <param name="shape">this rank's weight as the computation sees it</param>
    protected StoredWeightModule(string name, long[] fullShape, long[] shape, ScalarType dtype, Device? device) : base(name)
    {
        ComputeDType = dtype;
        FullWeightShape = fullShape;
        WeightShape = shape;
        WeightStorage = WeightFormats.Of(dtype);
        weight = new Parameter(empty(shape, dtype, device), requires_grad: false);
        // Registered here, ahead of the derived layer's fields, so the state dict lists weight before bias as nn.Linear does.
        register_parameter(nameof(weight), weight);
    }

    public long[] WeightShape { get; }
    public long[] FullWeightShape { get; }
    public GgmlType WeightStorage { get; private set; }
    public ScalarType ComputeDType { get; }

    /// <summary>Held in the compute dtype: used as it is, so the result is the plain layer's, to the bit.</summary>
    protected bool HeldAsComputed => WeightStorage == WeightFormats.Of(ComputeDType);

    /// <summary>The weight in the compute dtype, as a new tensor (the caller frees it).</summary>
    public Tensor ExpandedWeight() => Expand(weight, WeightShape);

    /// <summary>
    /// <paramref name="stored"/> — the weight, or rows of it, as held — in the compute dtype as a new tensor of
    /// <paramref name="shape"/> (the values' shape; a float weight has it already).
    /// </summary>
    protected Tensor Expand(Tensor stored, long[] shape)
    {
        using var noGrad = no_grad();
        if (WeightFormats.FloatDType(WeightStorage) is { } dtype)
            return dtype == ComputeDType ? stored.alias() : stored.to(ComputeDType);
        return PackedFormat.Expand(stored, WeightStorage, shape, ComputeDType);
    }

    public void StoreWeightAs(GgmlType storage)
    {
        var dtype = WeightFormats.FloatDType(storage)
            ?? throw new ArgumentException($"{storage} is a packed format: set its bytes with {nameof(SetWeightBlocks)}");
        Replace(empty(WeightShape, dtype, weight.device), storage);
    }

    public abstract bool CanHoldBlocks(GgmlType type, long fullRowLength);

    public abstract QuantizedWeight ShardBlocks(QuantizedWeight full);

    public void SetWeightBlocks(QuantizedWeight local)
    {
        if (!local.Shape.SequenceEqual(WeightShape))
            throw new ArgumentException($"{local.Type} blocks of shape [{string.Join(", ", local.Shape)}] do not fit weight [{string.Join(", ", WeightShape)}]");
        Replace(local.Blocks.to(weight.device), local.Type);
    }

    void Replace(Tensor stored, GgmlType storage)
    {
        var old = weight;
        weight = new Parameter(stored, requires_grad: false);
        ConditionallyRegisterParameter(nameof(weight), weight);
        WeightStorage = storage;
        old.Dispose();
    }

    /// <summary>Whether rows of <paramref name="rowLength"/> are whole <paramref name="type"/> blocks.</summary>
    protected static bool WholeBlocks(GgmlType type, long rowLength) => rowLength % GgmlBlocks.Of(type).Elements == 0;
}
