using Sd35.Tensors.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// The loader's branch for storable weights (<see cref="IStoredWeight"/>): sets each one's float storage before
/// reading, and loads as blocks a weight the checkpoint stores packed (ggml blocks, or fp8 bytes: kept as the file
/// holds them, even where the options ask to quantize, since no block type is smaller than fp8's byte a value) or the
/// options ask to quantize. Blocks are
/// quantized from the whole checkpoint tensor and then cut, so every mesh holds the blocks one device holds; where a
/// rank's cut would split a block (a row-parallel piece narrower than whole blocks), that rank holds the same
/// blocks' values expanded to the compute dtype instead, which again computes what one device computes.
/// </summary>
static class StoredWeights
{
    const string WeightName = "weight";

    public static void Prepare(IEnumerable<nn.Module> modules, WeightStorage? storage)
    {
        if (storage is null) return;
        storage.Validate();
        foreach (var layer in modules.OfType<IStoredWeight>())
        {
            var format = storage.FloatStorageFor(layer.ComputeDType);
            if (layer.WeightStorage != format) layer.StoreWeightAs(format);
        }
    }

    /// <summary>The storable layer whose weight <paramref name="name"/> is, if it is one.</summary>
    public static IStoredWeight? Owner(Dictionary<string, nn.Module> modules, string name)
    {
        int dot = name.LastIndexOf('.');
        if (name[(dot + 1)..] != WeightName) return null;
        return modules.TryGetValue(dot < 0 ? "" : name[..dot], out var module) ? module as IStoredWeight : null;
    }

    /// <summary>Blocks or fp8 in the checkpoint, or a quantization asked for and rows that are whole blocks (other rows stay float).</summary>
    public static bool TakesBlocks(Checkpoint checkpoint, string key, WeightStorage? storage) =>
        checkpoint.BlockTypeOf(key) is not null
        || storage?.Quantize is { } type && checkpoint.ShapeOf(key) is { Length: 2 } shape && shape[1] % GgmlBlocks.Of(type).Elements == 0;

    public static string? Load(Checkpoint checkpoint, string key, IStoredWeight layer, WeightStorage? storage)
    {
        try { return LoadBlocks(checkpoint, key, layer, storage); }
        // Each weight leaves its full-precision read and the quantizer's temporaries freed behind it. With freed memory
        // retained (CpuRuntime), the small blocks settle between those holes and the heap never shrinks: the full-size
        // transformer quantized to Q8_0 at load stayed at 13.5 GiB resident for an 8.1 GiB model, 8.6 GiB with
        // retention off. Handing the free pages back after each weight keeps the load at one staging tensor above the model.
        finally { CpuRuntime.ReleaseFreeMemory(); }
    }

    static string? LoadBlocks(Checkpoint checkpoint, string key, IStoredWeight layer, WeightStorage? storage)
    {
        // Before reading: a tensor of another shape is the wrong tensor (and an fp8 one of no rows would not even be blocks).
        var shape = checkpoint.ShapeOf(key);
        if (!shape.SequenceEqual(layer.FullWeightShape))
            return $"'{key}' in '{checkpoint.PathOf(key)}': {checkpoint.BlockTypeOf(key) ?? storage?.Quantize} blocks of checkpoint shape {CheckpointLoader.Text(shape)}, model shape {CheckpointLoader.Text(layer.FullWeightShape)}";
        using var full = ReadQuantized(checkpoint, key, storage);
        try
        {
            if (layer.CanHoldBlocks(full.Type, full.RowLength))
            {
                // The shard owns its bytes (a copy or a view of full's) and the parameter holds its own reference to
                // them: undisposed, the shard kept every quantized weight alive after its model was released (a staged
                // run kept the whole Q8_0 T5 through denoising, and the transformer after it).
                using var local = layer.ShardBlocks(full);
                layer.SetWeightBlocks(local);
                return null;
            }
            return LoadExpanded(checkpoint, key, layer, full);
        }
        catch (ArgumentException e)
        {
            return $"'{key}' in '{checkpoint.PathOf(key)}': {full.Type} blocks of checkpoint shape {CheckpointLoader.Text(full.Shape)} do not fit weight {CheckpointLoader.Text(layer.WeightShape)} ({e.Message})";
        }
    }

    static QuantizedWeight ReadQuantized(Checkpoint checkpoint, string key, WeightStorage? storage)
    {
        if (checkpoint.BlockTypeOf(key) is not null) return checkpoint.ReadBlocks(key);
        using var values = checkpoint.Read(key);
        if (!is_floating_point(values))
            throw new Errors.CheckpointException(checkpoint.PathOf(key), key, $"cannot be quantized: dtype {values.dtype} is not a float");
        return QuantizedWeight.Quantize(values, storage!.Quantize!.Value);
    }

    /// <summary>A rank that cannot hold whole blocks holds their values in the compute dtype.</summary>
    static string? LoadExpanded(Checkpoint checkpoint, string key, IStoredWeight layer, QuantizedWeight full)
    {
        using var values = full.Dequantize(layer.ComputeDType);
        layer.StoreWeightAs(WeightFormats.Of(layer.ComputeDType));
        var weight = ((nn.Module)layer).get_parameter(WeightName)!;
        using var piece = layer is IShardedParameters sharded ? sharded.ShardFromFull(WeightName, values) : null;
        var local = piece ?? values;
        if (!local.shape.SequenceEqual(layer.WeightShape))
            return $"'{key}' in '{checkpoint.PathOf(key)}': checkpoint shape {CheckpointLoader.Text(full.Shape)}, this rank's piece {CheckpointLoader.Text(local.shape)}, weight {CheckpointLoader.Text(layer.WeightShape)}";
        using (no_grad()) weight.copy_(local);
        return null;
    }
}
