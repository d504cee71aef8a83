using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Layers;

/// <summary>
/// A linear layer whose <c>weight</c> is held in a storage format (fp32, bf16, fp16 or ggml blocks) and computes in
/// the dtype it was built with: at each use the weight is expanded to the compute dtype, used, and freed, so only one
/// layer's expanded weight exists at a time. When storage and compute agree the weight is used as it is (the
/// result is the plain linear's, to the bit). The parameter keeps the checkpoint's name, <c>weight</c>: a float
/// weight of its dtype, or for blocks the bytes, uint8 [out, in / 32 · bytes per block].
/// </summary>
public abstract class StoredWeightLinear : nn.Module<Tensor, Tensor>, IStoredWeight
{
    public Parameter weight;

    /// <param name="fullShape">[out, in] of the checkpoint tensor, before padding and cutting</param>
    protected StoredWeightLinear(string name, long[] fullShape, long outFeatures, long inFeatures, ScalarType dtype, Device? device) : base(name)
    {
        ComputeDType = dtype;
        FullWeightShape = fullShape;
        WeightShape = [outFeatures, inFeatures];
        WeightStorage = WeightFormats.Of(dtype);
        weight = new Parameter(empty(outFeatures, inFeatures, dtype, device), requires_grad: false);
        // Registered here, ahead of the derived layer's fields, so the state dict lists weight before bias as nn.Linear does.
        register_parameter(nameof(weight), weight);
    }

    public long[] WeightShape { get; }
    public long[] FullWeightShape { get; }
    public GgmlType WeightStorage { get; private set; }
    public ScalarType ComputeDType { get; }

    /// <summary>x·Wᵀ (+ b) with the weight expanded to the compute dtype for this call only.</summary>
    protected Tensor Linear(Tensor input, Tensor? bias = null)
    {
        if (WeightStorage == WeightFormats.Of(ComputeDType)) return Kernels.Linear(input, weight, bias);
        using var expanded = ExpandedWeight();
        return Kernels.Linear(input, expanded, bias);
    }

    /// <summary>The weight in the compute dtype, as a new tensor (the caller frees it).</summary>
    public Tensor ExpandedWeight()
    {
        using var noGrad = no_grad();
        if (WeightFormats.FloatDType(WeightStorage) is { } stored)
            return stored == ComputeDType ? weight.alias() : weight.to(ComputeDType);
        return GgmlCodec.Dequantize(weight, WeightStorage, WeightShape, ComputeDType);
    }

    public void StoreWeightAs(GgmlType storage)
    {
        var dtype = WeightFormats.FloatDType(storage)
            ?? throw new ArgumentException($"{storage} is a block type: set blocks with {nameof(SetWeightBlocks)}");
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

    /// <summary>A cut of the input features (dimension 1) in elements, restated in block bytes.</summary>
    private protected static Parallel.ShardLayout InBlockBytes(Parallel.ShardLayout layout, GgmlType type) =>
        layout with { PaddedSize = layout.PaddedSize == 0 ? 0 : GgmlBlocks.BytesOf(type, layout.PaddedSize) };
}
