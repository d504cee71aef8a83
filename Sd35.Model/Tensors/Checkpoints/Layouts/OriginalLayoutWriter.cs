using Sd35.Tensors.Gguf;
using Sd35.Tensors.Quantization;
using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints.Layouts;

/// <summary>
/// Writes model-named checkpoints in the layouts users hold: the release's single file (MMDiT in the original
/// names under <c>model.diffusion_model.</c>, VAE in ldm names under <c>first_stage_model.</c>, text encoders under
/// <c>text_encoders.*.transformer.</c>) and a GGUF MMDiT (original names, <c>general.architecture = sd3</c>). The
/// inverse of <see cref="SingleFileCheckpoint"/>, from the same rules; for tests, fixtures and <c>make-model</c>.
/// Tensors are read and written one at a time, so a full-size model needs one tensor of memory.
/// </summary>
public static class OriginalLayoutWriter
{
    public static readonly IReadOnlyDictionary<ModelComponent, string> SingleFilePrefixes = new Dictionary<ModelComponent, string>
    {
        [ModelComponent.Transformer] = "model.diffusion_model.", [ModelComponent.Vae] = "first_stage_model.",
        [ModelComponent.ClipL] = "text_encoders.clip_l.transformer.", [ModelComponent.ClipG] = "text_encoders.clip_g.transformer.",
        [ModelComponent.T5] = "text_encoders.t5xxl.transformer.",
    };

    /// <summary>One stored tensor: its name in the layout, dtype, shape, and how to make it from the model-named checkpoint.</summary>
    public sealed record StoredTensor(string Name, ScalarType DType, long[] Shape, Func<Tensor> Read);

    /// <summary>The tensors of <paramref name="component"/> in its original layout (MMDiT, ldm VAE; text encoders keep their names).</summary>
    public static IReadOnlyList<StoredTensor> Stored(Checkpoint model, ModelComponent component)
    {
        var keys = model.Keys.ToList();
        var rules = component switch
        {
            ModelComponent.Transformer => Sd3OriginalLayout.RulesForModel(keys),
            ModelComponent.Vae => LdmVaeLayout.RulesForModel(keys),
            _ => keys.Select(k => KeyRule.Same(k, k)),
        };
        var present = rules.Where(r => model.Contains(r.Model)).GroupBy(r => r.Stored).ToList();
        var covered = present.SelectMany(g => g.Select(r => r.Model)).ToHashSet(StringComparer.Ordinal);
        var unmapped = keys.Where(k => !covered.Contains(k)).ToList();
        if (unmapped.Count > 0)
            throw new ArgumentException($"{model.Source}: no {component} layout name for {string.Join(", ", unmapped.Take(5))}");
        return present.Select(group =>
        {
            var parts = group.ToList();
            var first = model.Entry(parts[0].Model);
            var shape = (long[])first.Shape.Clone();
            if (parts[0].Chunks > 1) shape[0] *= parts[0].Chunks;
            if (parts[0].ConvKernel && shape.Length == 2) shape = [shape[0], shape[1], 1, 1];
            return new StoredTensor(group.Key, first.DType, shape, () =>
            {
                var pieces = parts.Select(r => (r, model.Read(r.Model))).ToList();
                try { return KeyRule.ToStored(pieces); }
                finally { foreach (var (_, t) in pieces) t.Dispose(); }
            });
        }).OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>The release's single-file layout: every given component under its prefix in one safetensors file.</summary>
    public static void WriteSingleFile(string path, IReadOnlyDictionary<ModelComponent, Checkpoint> components, ScalarType? dtype = null)
    {
        var tensors = components.SelectMany(c => Stored(c.Value, c.Key).Select(t => t with { Name = SingleFilePrefixes[c.Key] + t.Name }))
            .OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var byName = tensors.ToDictionary(t => t.Name);
        var specs = tensors.Select(t => new TensorSpec(t.Name, dtype ?? t.DType, t.Shape)).ToList();
        ShardedSafetensorsWriter.WriteFile(path, specs, spec =>
        {
            using var value = byName[spec.Name].Read();
            return value.to(spec.DType);
        }, null);
    }

    /// <summary>
    /// A GGUF MMDiT as the community writes them: original names, <c>general.architecture = sd3</c>, weights of two
    /// or more dimensions in <paramref name="type"/> (F32, F16 or BF16; block types need a quantizer, see
    /// <paramref name="quantize"/>), 1-D tensors (biases, norms) in F32 as the community's files keep them.
    /// </summary>
    /// <param name="quantize">turns a float tensor into raw <paramref name="type"/> blocks (uint8 rows); required for block types</param>
    public static void WriteGguf(string path, Checkpoint transformer, GgmlType type, Func<Tensor, GgmlType, Tensor>? quantize = null)
    {
        if (GgmlBlocks.IsBlockQuantized(type) && quantize is null)
            throw new NotSupportedException($"writing {type} blocks needs a quantizer (the ggml codec); dense types are F32, F16, BF16");
        var tensors = Stored(transformer, ModelComponent.Transformer).Select(t =>
        {
            bool weight = t.Shape.Length >= 2 && t.Name != "pos_embed";
            var chosen = weight && (!GgmlBlocks.IsBlockQuantized(type) || t.Shape[^1] % GgmlBlocks.Of(type).Elements == 0) ? type : GgmlType.F32;
            Func<Tensor> data = GgmlBlocks.IsBlockQuantized(chosen) ? () => { using var dense = t.Read(); return quantize!(dense, chosen); } : t.Read;
            return new GgufTensor(t.Name, chosen, t.Shape, data);
        }).ToList();
        GgufWriter.Write(path, tensors, new Dictionary<string, object>
        {
            ["general.architecture"] = "sd3",
            ["general.quantization_version"] = 2u,
        });
    }
}
