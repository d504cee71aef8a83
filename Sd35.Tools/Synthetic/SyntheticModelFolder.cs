using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sd35.Errors;
using Sd35.Layers.Embeddings;
using Sd35.Mesh;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Tensors;
using Sd35.Tensors.Checkpoints;
using Sd35.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tools.Synthetic;

/// <summary>What one component of a synthetic folder came to: tensors, bytes, files and the seconds it took to write.</summary>
public sealed record SyntheticComponent(string Name, int Tensors, long Bytes, int Files, double Seconds);

/// <summary>
/// Writes a diffusers-layout SD3.5 folder with seeded random weights: <c>model_index.json</c>, <c>scheduler/</c>,
/// <c>transformer/</c>, <c>text_encoder{,_2,_3}/</c>, <c>tokenizer{,_2,_3}/</c> and <c>vae/</c>, with the release's file
/// names, sharding and config keys. Tensor names and shapes come from the project's own models, built on the meta
/// device (no memory) from the configs being written, so the folder loads by name by construction. Each tensor is
/// made, written and dropped in turn: the writer's memory stays at about one tensor (in float32) whatever the size.
/// <c>model_index.json</c> is written last, so a folder that has it is complete.
/// </summary>
public static class SyntheticModelFolder
{
    static readonly Device Meta = Sd35.Profiling.ShapeOnly.Device;
    static readonly Dictionary<string, string> FormatMetadata = new() { ["format"] = "pt" };

    public static bool IsComplete(string directory) => File.Exists(Path.Combine(directory, "model_index.json"));

    public static IReadOnlyList<SyntheticComponent> Write(string directory, SyntheticModelPreset preset, long seed = 0,
        ScalarType dtype = ScalarType.BFloat16, Action<string>? log = null, IReadOnlyCollection<string>? only = null)
    {
        Directory.CreateDirectory(directory);
        File.Delete(Path.Combine(directory, "model_index.json"));
        var components = new List<SyntheticComponent>();
        void Add(Func<SyntheticComponent> write, string name)
        {
            if (only is not null && !only.Contains(name)) return;
            var c = write();
            components.Add(c);
            log?.Invoke($"{c.Name,-15} {c.Tensors,5} tensors {c.Bytes / 1e9,8:F3} GB in {c.Files} file(s), {c.Seconds,7:F1} s ({c.Bytes / 1e9 / Math.Max(c.Seconds, 1e-9):F2} GB/s)");
        }

        var transformerConfig = ModelConfig.Parse<SD3TransformerConfig>(preset.Transformer.ToJsonString());
        Add(() => WriteComponent(directory, "transformer", preset.Transformer, "diffusion_pytorch_model", preset.TransformerShardBytes, seed, dtype,
            () => new SD3Transformer2DModel(transformerConfig, MeshRank.Single(Meta), dtype),
            spec => spec.Name == "pos_embed.pos_embed" ? PositionTable(transformerConfig, dtype) : null), "transformer");
        Add(() => WriteComponent(directory, "text_encoder", preset.ClipL, "model", preset.TextEncoderShardBytes, seed, dtype,
            () => new ClipTextModel(ModelConfig.Parse<ClipTextConfig>(preset.ClipL.ToJsonString()), MeshRank.Single(Meta), dtype)), "text_encoder");
        Add(() => WriteComponent(directory, "text_encoder_2", preset.ClipG, "model", preset.TextEncoderShardBytes, seed, dtype,
            () => new ClipTextModel(ModelConfig.Parse<ClipTextConfig>(preset.ClipG.ToJsonString()), MeshRank.Single(Meta), dtype)), "text_encoder_2");
        Add(() => WriteComponent(directory, "text_encoder_3", preset.T5, "model", preset.TextEncoderShardBytes, seed, dtype,
            () => new T5EncoderModel(ModelConfig.Parse<T5Config>(preset.T5.ToJsonString()), MeshRank.Single(Meta), dtype)), "text_encoder_3");
        Add(() => WriteComponent(directory, "vae", preset.Vae, "diffusion_pytorch_model", preset.TransformerShardBytes, seed, dtype,
            () => new AutoencoderKLDecoder(ModelConfig.Parse<AutoencoderKLConfig>(preset.Vae.ToJsonString()), MeshRank.Single(Meta), dtype)), "vae");

        // A partial write completes the folder once every component is there (written now or by an earlier run), so a
        // 27 GB model can be written piece by piece; until then it is never marked complete.
        if (only is not null && !AllComponentsReadable(directory)) return components;
        WriteJson(Path.Combine(directory, "scheduler", "scheduler_config.json"), ReleaseConfigs.Scheduler());
        WriteTokenizers(directory);
        WriteJson(Path.Combine(directory, "model_index.json"), ReleaseConfigs.ModelIndex());
        return components;
    }

    static readonly string[] ComponentNames = ["transformer", "text_encoder", "text_encoder_2", "text_encoder_3", "vae"];

    /// <summary>Whether each component's config and weights are there and their headers read (a truncated file does not).</summary>
    static bool AllComponentsReadable(string directory) => ComponentNames.All(name =>
    {
        var folder = Path.Combine(directory, name);
        if (!File.Exists(Path.Combine(folder, "config.json"))) return false;
        try { using var checkpoint = new ModelFolder(folder).OpenCheckpoint(); return true; }
        catch (Exception e) when (e is IOException or InputException) { return false; }
    });

    /// <summary>
    /// Checks that a folder holds this writer's values for <paramref name="seed"/>: the largest tensor of each
    /// component and <paramref name="samples"/> others are made again and compared byte for byte.
    /// </summary>
    /// <returns>one line per compared tensor, "ok" or what differs</returns>
    public static IReadOnlyList<string> Verify(string directory, long seed = 0, int samples = 3)
    {
        var lines = new List<string>();
        foreach (var name in ComponentNames)
        {
            using var checkpoint = new ModelFolder(Path.Combine(directory, name)).OpenCheckpoint();
            var keys = checkpoint.Keys.Where(k => k != "pos_embed.pos_embed").OrderBy(k => k, StringComparer.Ordinal).ToList();
            var chosen = keys.OrderByDescending(k => checkpoint.Entry(k).ElementCount).Take(1)
                .Concat(Enumerable.Range(1, samples).Select(i => keys[i * keys.Count / (samples + 1)])).Distinct();
            foreach (var key in chosen)
            {
                var entry = checkpoint.Entry(key);
                using var stored = checkpoint.Read(key);
                using var generator = RandomInit.ForTensor(seed, $"{name}/{key}");
                using var made = RandomInit.ValuesIn(entry.DType, key, entry.Shape, generator);
                bool same = stored.bytes.SequenceEqual(made.bytes);
                lines.Add($"{name}/{key} {entry.ShapeText}: {(same ? "ok" : "DIFFERS")}");
            }
        }
        return lines;
    }

    /// <summary>The tensors a component's model holds, in its state-dict order, as the model built on the meta device reports them.</summary>
    public static IReadOnlyList<TensorSpec> Specs(nn.Module model, ScalarType dtype) =>
        model.state_dict().Select(kv => new TensorSpec(kv.Key, dtype, kv.Value.shape)).ToList();

    static SyntheticComponent WriteComponent(string root, string name, JsonObject config, string prefix, long maxShardBytes, long seed,
        ScalarType dtype, Func<nn.Module> buildOnMeta, Func<TensorSpec, Tensor?>? fixedValues = null)
    {
        var watch = Stopwatch.StartNew();
        var directory = Path.Combine(root, name);
        if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        Directory.CreateDirectory(directory);
        IReadOnlyList<TensorSpec> specs;
        using (var model = buildOnMeta()) specs = Specs(model, dtype);
        WriteJson(Path.Combine(directory, "config.json"), config);

        Tensor Values(TensorSpec spec)
        {
            if (fixedValues?.Invoke(spec) is { } fixedTensor) return fixedTensor;
            // Freed tensors of all sizes go back to the system between tensors, so the writer's peak stays near one tensor.
            CpuRuntime.ReleaseFreeMemory();
            using var generator = RandomInit.ForTensor(seed, $"{name}/{spec.Name}");
            return RandomInit.ValuesIn(spec.DType, spec.Name, spec.Shape, generator);
        }
        var weights = ShardedSafetensorsWriter.Write(directory, prefix, specs, maxShardBytes, Values, FormatMetadata);
        int files = weights.EndsWith(".index.json", StringComparison.Ordinal) ? ShardedSafetensorsWriter.Plan(prefix, specs, maxShardBytes).Count : 1;
        return new SyntheticComponent(name, specs.Count, specs.Sum(s => s.ByteCount), files, watch.Elapsed.TotalSeconds);
    }

    /// <summary>The release stores the fixed sin-cos table; the same values as the model computes for itself.</summary>
    static Tensor PositionTable(SD3TransformerConfig config, ScalarType dtype)
    {
        using var table = SinCosPositionEmbedding.Table(config.InnerDim, config.PosEmbedMaxSize, config.SampleSize / config.PatchSize);
        return table.to(dtype);
    }

    /// <summary>The real tokenizer files shipped with the library, with the release's special-token files beside them.</summary>
    static void WriteTokenizers(string root)
    {
        var shipped = TokenizerSet.DefaultDirectory;
        foreach (var (folder, pad, padId) in new[] { ("tokenizer", "<|endoftext|>", (int?)null), ("tokenizer_2", "!", 0) })
        {
            var directory = Directory.CreateDirectory(Path.Combine(root, folder)).FullName;
            File.Copy(Path.Combine(shipped, "clip", "vocab.json"), Path.Combine(directory, "vocab.json"), overwrite: true);
            File.Copy(Path.Combine(shipped, "clip", "merges.txt"), Path.Combine(directory, "merges.txt"), overwrite: true);
            WriteJson(Path.Combine(directory, "special_tokens_map.json"), ReleaseConfigs.ClipSpecialTokensMap(pad));
            WriteJson(Path.Combine(directory, "tokenizer_config.json"), ReleaseConfigs.ClipTokenizerConfig(pad, padId));
        }
        var t5 = Directory.CreateDirectory(Path.Combine(root, "tokenizer_3")).FullName;
        File.Copy(Path.Combine(shipped, "t5", "spiece.model"), Path.Combine(t5, "spiece.model"), overwrite: true);
        WriteJson(Path.Combine(t5, "special_tokens_map.json"), ReleaseConfigs.T5SpecialTokensMap());
        WriteJson(Path.Combine(t5, "tokenizer_config.json"), ReleaseConfigs.T5TokenizerConfig());
    }

    static void WriteJson(string path, JsonObject value)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, value.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
