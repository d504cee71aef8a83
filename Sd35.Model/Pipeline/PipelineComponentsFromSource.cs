using Sd35.Errors;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Checkpoints.Layouts;
using Sd35.Tokenizers;

namespace Sd35.Pipeline;

public sealed partial class PipelineComponents
{
    /// <summary>The diffusers part folder of each component.</summary>
    static readonly Dictionary<ModelComponent, string> PartFolders = new()
    {
        [ModelComponent.Transformer] = "transformer", [ModelComponent.Vae] = "vae",
        [ModelComponent.ClipL] = "text_encoder", [ModelComponent.ClipG] = "text_encoder_2", [ModelComponent.T5] = "text_encoder_3",
    };

    /// <summary>
    /// The files that sit beside the release's single file, as Stability and ComfyUI name them (looked for in the file's
    /// folder and its <c>text_encoders/</c>); the first present is used.
    /// </summary>
    static readonly Dictionary<ModelComponent, string[]> SiblingNames = new()
    {
        [ModelComponent.ClipL] = ["clip_l.safetensors"],
        [ModelComponent.ClipG] = ["clip_g.safetensors"],
        [ModelComponent.T5] = ["t5xxl_fp16.safetensors", "t5xxl_fp8_e4m3fn.safetensors"],
    };

    /// <summary>
    /// The components a <see cref="ModelSource"/> names: a diffusers folder, or a single-file checkpoint with the
    /// text-encoder files beside it, each part replaced by its override where one is given. An override keeps the
    /// folder's config for that part when the folder has one (Preflight then checks the file's shapes against it);
    /// otherwise the config is inferred from the file's tensors. Tokenizers and scheduler come from the folder, or the
    /// built-in defaults for a single file. Headers are read here; no weight is.
    /// </summary>
    /// <remarks>With no <see cref="ModelSource.Model"/>: the built-in tiny reference components (<see cref="BuiltInComponents"/>).</remarks>
    public static PipelineComponents From(ModelSource source)
    {
        var overrides = new Dictionary<ModelComponent, string?>
        {
            [ModelComponent.Transformer] = source.Transformer, [ModelComponent.Vae] = source.Vae,
            [ModelComponent.ClipL] = source.ClipL, [ModelComponent.ClipG] = source.ClipG, [ModelComponent.T5] = source.T5,
        };
        foreach (var (component, file) in overrides)
            if (file is not null && !File.Exists(file)) throw new CheckpointException(file, null, $"the {component} file does not exist");

        if (source.Model is null)
        {
            if (overrides.Values.Any(v => v is not null))
                throw new ModelFolderException("(no --model)", "component overrides replace parts of a model: give the model folder or single file too");
            return BuiltInComponents.Load();
        }
        if (Directory.Exists(source.Model))
            return overrides.Values.All(v => v is null) ? FromDiffusersFolder(source.Model) : FromFolderWithOverrides(source.Model, overrides);
        if (File.Exists(source.Model)) return FromSingleFile(source.Model, overrides);
        throw new ModelFolderException(source.Model, "the model is neither a folder nor a file");
    }

    static PipelineComponents FromFolderWithOverrides(string modelDir, Dictionary<ModelComponent, string?> overrides)
    {
        ModelFolder? Part(ModelComponent component, bool required)
        {
            var folder = Path.Combine(modelDir, PartFolders[component]);
            if (overrides[component] is { } file)
                return FromFile(file, component, File.Exists(Path.Combine(folder, "config.json")) ? folder : null);
            if (Directory.Exists(folder)) return new ModelFolder(folder);
            return required ? throw new ModelFolderException(modelDir, $"has no '{PartFolders[component]}/' part (the SD3 pipeline needs it; or give it as a file)") : null;
        }
        var schedulerDir = Path.Combine(modelDir, "scheduler");
        var scheduler = Directory.Exists(schedulerDir)
            ? new ModelFolder(schedulerDir).ReadConfig<FlowMatchEulerSchedulerConfig>(FlowMatchEulerSchedulerConfig.FileName)
            : new FlowMatchEulerSchedulerConfig { Shift = 3.0 };
        bool folderTokenizers = Directory.Exists(Path.Combine(modelDir, "tokenizer"));
        return new PipelineComponents(Part(ModelComponent.Transformer, true)!, Part(ModelComponent.Vae, true)!, Part(ModelComponent.ClipL, true)!,
            Part(ModelComponent.ClipG, true)!, Part(ModelComponent.T5, false),
            folderTokenizers ? () => TokenizerSet.FromDiffusersFolder(modelDir) : () => TokenizerSet.Default(),
            scheduler, $"SD3 model '{modelDir}' with {Describe(overrides)}");
    }

    static PipelineComponents FromSingleFile(string modelFile, Dictionary<ModelComponent, string?> overrides)
    {
        var held = SingleFileCheckpoint.ComponentsIn(modelFile);
        // A bare MMDiT (a GGUF transformer) given as the model is the transformer alone.
        if (held.Count == 0) held = [ModelComponent.Transformer];
        var directory = Path.GetDirectoryName(Path.GetFullPath(modelFile))!;
        ModelFolder? Part(ModelComponent component, bool required)
        {
            if (overrides[component] is { } file) return FromFile(file, component, null);
            if (held.Contains(component)) return FromFile(modelFile, component, null);
            if (Sibling(directory, component) is { } sibling) return FromFile(sibling, component, null);
            if (!required) return null;
            var looked = SiblingNames.TryGetValue(component, out var names) ? $"; looked beside it for {string.Join(", ", names)}" : "";
            throw new CheckpointException(modelFile, null, $"holds no {component} and none was given (--{Flag(component)} FILE){looked}");
        }
        return new PipelineComponents(Part(ModelComponent.Transformer, true)!, Part(ModelComponent.Vae, true)!, Part(ModelComponent.ClipL, true)!,
            Part(ModelComponent.ClipG, true)!, Part(ModelComponent.T5, false), () => TokenizerSet.Default(),
            new FlowMatchEulerSchedulerConfig { Shift = 3.0 }, $"SD3 single file '{modelFile}' with {Describe(overrides)}");
    }

    static string? Sibling(string directory, ModelComponent component) =>
        SiblingNames.TryGetValue(component, out var names)
            ? names.SelectMany(n => new[] { Path.Combine(directory, n), Path.Combine(directory, "text_encoders", n) }).FirstOrDefault(File.Exists)
            : null;

    /// <summary>One component from one file, in whichever layout it is; the config from <paramref name="configDirectory"/> or inferred.</summary>
    public static ModelFolder FromFile(string file, ModelComponent component, string? configDirectory)
    {
        // Opened once now, so a file that holds no such component fails here, before any work.
        using (SingleFileCheckpoint.Open(file, component)) { }
        Func<Checkpoint, IModelConfig> infer = component switch
        {
            ModelComponent.Transformer => ConfigInference.Transformer,
            ModelComponent.Vae => ConfigInference.Vae,
            ModelComponent.T5 => ConfigInference.T5,
            _ => ConfigInference.Clip,
        };
        return ModelFolder.ForFile(file, () => SingleFileCheckpoint.Open(file, component), configDirectory, infer);
    }

    static string Flag(ModelComponent component) => component switch
    {
        ModelComponent.ClipL => "clip-l", ModelComponent.ClipG => "clip-g", _ => component.ToString().ToLowerInvariant(),
    };

    static string Describe(Dictionary<ModelComponent, string?> overrides)
    {
        var given = overrides.Where(o => o.Value is not null).Select(o => $"{Flag(o.Key)} '{o.Value}'").ToList();
        return given.Count == 0 ? "no overrides" : string.Join(", ", given);
    }
}
