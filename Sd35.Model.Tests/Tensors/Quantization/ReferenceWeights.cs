using Sd35.Layers;
using Sd35.Tensors.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tests.Tensors.Quantization;

/// <summary>
/// The values a model's storable weights (<see cref="StoredWeightModule"/>: linears and embedding tables) stand for,
/// read from the bytes they are held in by the tests' own decoders (<see cref="ReferenceBlocks"/>,
/// <see cref="ReferenceFp8"/>), not by the code under test, and put into a full-precision copy of the model.
/// </summary>
public static class ReferenceWeights
{
    public static IEnumerable<(string Name, StoredWeightModule Layer)> StoredLayers(nn.Module model) =>
        model.named_modules().Where(m => m.module is StoredWeightModule).Select(m => (m.name, (StoredWeightModule)m.module));

    /// <summary>The layer's weight values in float32, from its held form.</summary>
    public static Tensor Of(StoredWeightModule layer)
    {
        var storage = layer.WeightStorage;
        // A float weight widened to float32 is exact, whatever torch does; only the packed formats need decoding.
        if (!PackedFormat.Is(storage)) return layer.weight.detach().to(ScalarType.Float32);
        var bytes = layer.weight.contiguous().data<byte>().ToArray();
        var values = Fp8Format.Is(storage) ? bytes.Select(b => (float)ReferenceFp8.Value(storage, b)).ToArray() : ReferenceBlocks.Dequantize(storage, bytes);
        return tensor(values).reshape(layer.WeightShape);
    }

    /// <summary>
    /// Copies into <paramref name="reference"/> (the same model, fp32) every storable weight of <paramref name="stored"/>
    /// as <see cref="Of"/> reads it; returns the names of the layers held in another format than fp32.
    /// </summary>
    public static List<string> CopyInto(nn.Module reference, nn.Module stored)
    {
        var targets = StoredLayers(reference).ToDictionary(l => l.Name, l => l.Layer);
        var converted = new List<string>();
        using var noGrad = no_grad();
        foreach (var (name, layer) in StoredLayers(stored))
        {
            using var values = Of(layer);
            targets[name].weight.copy_(values);
            if (layer.WeightStorage != GgmlType.F32) converted.Add(name);
        }
        return converted;
    }
}
