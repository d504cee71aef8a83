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
    public static IReadOnlyList<StoredTensor> Stored(Checkpoint model, ModelComponent component) =>
        Stored(model, component, component switch
        {
            ModelComponent.Transformer => Sd3OriginalLayout.RulesForModel,
            ModelComponent.Vae => LdmVaeLayout.RulesForModel,
            _ => keys => keys.Select(k => KeyRule.Same(k, k)),
        });

    /// <summary>The tensors of <paramref name="component"/> in the layout <paramref name="rulesForModel"/> gives for its keys.</summary>
    internal static IReadOnlyList<StoredTensor> Stored(Checkpoint model, ModelComponent component, Func<ICollection<string>, IEnumerable<KeyRule>> rulesForModel)
    {
        var keys = model.Keys.ToList();
        var rules = rulesForModel(keys);
        var present = rules.Where(r => model.Contains(r.Model)).GroupBy(r => r.Stored).ToList();
        var covered = present.SelectMany(g => g.Select(r => r.Model)).ToHashSet(StringComparer.Ordinal);
        var unmapped = keys.Where(k => !covered.Contains(k)).ToList();
        if (unmapped.Count > 0)
            throw new ArgumentException($"{model.Source}: no {component} layout name for {string.Join(", ", unmapped.Take(5))}");
        return present.Select(group =>
        {
            // Two model names of one piece (T5's tied embedding) are one stored tensor.
            var parts = group.DistinctBy(r => r.Chunk).ToList();
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
    public static void WriteSingleFile(string path, IReadOnlyDictionary<ModelComponent, Checkpoint> components, ScalarType? dtype = null) =>
        WriteSafetensors(path, components.SelectMany(c => Stored(c.Value, c.Key).Select(t => t with { Name = SingleFilePrefixes[c.Key] + t.Name })), dtype);

    /// <summary>One component alone in its original layout, without a prefix (<c>clip_l.safetensors</c>, <c>t5xxl_fp16.safetensors</c>).</summary>
    public static void WriteComponentFile(string path, Checkpoint component, ModelComponent kind, ScalarType? dtype = null) =>
        WriteSafetensors(path, Stored(component, kind), dtype);

    static void WriteSafetensors(string path, IEnumerable<StoredTensor> stored, ScalarType? dtype)
    {
        var tensors = stored
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
    /// <paramref name="quantize"/>; a weight whose rows are not whole blocks stays in BF16 when it is bf16, else F16),
    /// 1-D tensors (biases, norms) and <c>pos_embed</c> in F32 as the community's files keep them.
    /// </summary>
    /// <param name="quantize">turns a float tensor into raw <paramref name="type"/> blocks (uint8 rows); required for block types</param>
    public static void WriteGguf(string path, Checkpoint transformer, GgmlType type, Func<Tensor, GgmlType, Tensor>? quantize = null)
    {
        if (GgmlBlocks.IsBlockQuantized(type) && quantize is null)
            throw new NotSupportedException($"writing {type} blocks needs a quantizer (the ggml codec); dense types are F32, F16, BF16");
        var tensors = Stored(transformer, ModelComponent.Transformer).Select(t =>
        {
            bool weight = t.Shape.Length >= 2 && t.Name != "pos_embed";
            var chosen = !weight ? GgmlType.F32
                : !GgmlBlocks.IsBlockQuantized(type) || t.Shape[^1] % GgmlBlocks.Of(type).Elements == 0 ? type
                : t.DType == ScalarType.BFloat16 ? GgmlType.BF16 : GgmlType.F16;
            Func<Tensor> data = GgmlBlocks.IsBlockQuantized(chosen) ? () => { using var dense = t.Read(); return quantize!(dense, chosen); } : t.Read;
            return new GgufTensor(t.Name, chosen, t.Shape, data);
        }).ToList();
        GgufWriter.Write(path, tensors, new Dictionary<string, object>
        {
            ["general.architecture"] = "sd3",
            ["general.quantization_version"] = 2u,
        });
    }

    /// <summary>
    /// <c>make-model --format single-file</c>: beside a diffusers folder, the release's <c>sd3.5_large.safetensors</c>
    /// (MMDiT and VAE) and <c>text_encoders/clip_l.safetensors</c>, <c>clip_g.safetensors</c>, <c>t5xxl_fp16.safetensors</c>.
    /// </summary>
    /// <returns>the single file's path (give it to <c>--model</c>; the text encoders are found beside it)</returns>
    public static string ExportSingleFile(string folder, Action<string>? log = null)
    {
        Checkpoint Open(string part) => new ModelFolder(Path.Combine(folder, part)).OpenCheckpoint();
        var single = Path.Combine(folder, "sd3.5_large.safetensors");
        using (var transformer = Open("transformer"))
        using (var vae = Open("vae"))
            WriteSingleFile(single, new Dictionary<ModelComponent, Checkpoint> { [ModelComponent.Transformer] = transformer, [ModelComponent.Vae] = vae });
        log?.Invoke($"  {single}: MMDiT (model.diffusion_model.) and VAE (first_stage_model.) in the original names");
        Directory.CreateDirectory(Path.Combine(folder, "text_encoders"));
        foreach (var (part, file, kind) in new[] { ("text_encoder", "clip_l", ModelComponent.ClipL), ("text_encoder_2", "clip_g", ModelComponent.ClipG), ("text_encoder_3", "t5xxl_fp16", ModelComponent.T5) })
        {
            if (!Directory.Exists(Path.Combine(folder, part))) continue;
            var path = Path.Combine(folder, "text_encoders", file + ".safetensors");
            using (var checkpoint = Open(part)) WriteComponentFile(path, checkpoint, kind, kind == ModelComponent.T5 ? ScalarType.Float16 : null);
            log?.Invoke($"  {path}");
        }
        return single;
    }

    /// <summary>
    /// <c>make-model --format gguf [--quantize TYPE]</c>: the folder's transformer as a community-style GGUF file beside it.
    /// Block types (Q8_0, …) need <paramref name="quantize"/>, the ggml codec's quantizer (raw blocks as uint8 rows).
    /// </summary>
    public static string ExportGguf(string folder, GgmlType type, Func<Tensor, GgmlType, Tensor>? quantize = null, Action<string>? log = null)
    {
        var path = Path.Combine(folder, $"sd3.5_large-{type}.gguf");
        using (var transformer = new ModelFolder(Path.Combine(folder, "transformer")).OpenCheckpoint()) WriteGguf(path, transformer, type, quantize);
        log?.Invoke($"  {path}: MMDiT in the original names, weights in {type}");
        return path;
    }
}
