using Sd35.Tensors.Quantization;
using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// Implemented by a layer whose <c>weight</c> is held in a storage format (fp32, bf16, fp16, fp8 or ggml blocks) apart from
/// the dtype it computes in, and expanded at use. The loader asks it to change its storage before reading
/// (<see cref="LoadOptions.Storage"/>) and hands it quantized blocks where the checkpoint holds them or the options ask
/// for them; everything else about loading it (names, sharding, float storage) is as for any parameter.
/// </summary>
interface IStoredWeight
{
    /// <summary>The shape of this rank's weight as the computation sees it ([out, in] of a linear).</summary>
    long[] WeightShape { get; }

    /// <summary>The shape of the whole checkpoint tensor this weight is (a piece of): [out, in] before padding and cutting.</summary>
    long[] FullWeightShape { get; }

    /// <summary>How the weight is held now: F32, F16, BF16, or a packed format (a block type, F8_E4M3, F8_E5M2).</summary>
    GgmlType WeightStorage { get; }

    /// <summary>The dtype the layer computes in (its inputs, bias and output).</summary>
    ScalarType ComputeDType { get; }

    /// <summary>Holds the weight as the float dtype <paramref name="storage"/> (F32, F16, BF16) from now on; its values are lost.</summary>
    void StoreWeightAs(GgmlType storage);

    /// <summary>
    /// Whether this rank's piece of a weight whose full rows are <paramref name="fullRowLength"/> long can be held as
    /// <paramref name="type"/> blocks: its rows (padding included) are whole blocks and every cut falls on a block boundary.
    /// </summary>
    bool CanHoldBlocks(GgmlType type, long fullRowLength);

    /// <summary>This rank's piece of the full blocks (the checkpoint tensor, quantized): cut and padded as the float weight is.</summary>
    QuantizedWeight ShardBlocks(QuantizedWeight full);

    /// <summary>Holds <paramref name="local"/> (this rank's piece, shaped <see cref="WeightShape"/>) from now on; takes ownership.</summary>
    void SetWeightBlocks(QuantizedWeight local);
}
