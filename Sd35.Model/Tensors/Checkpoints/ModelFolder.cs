using Sd35.Errors;
using TorchSharp;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// One component folder of a diffusers model (<c>transformer/</c>, <c>vae/</c>, <c>text_encoder/</c>…):
/// a <c>config.json</c> and its weights as one safetensors file or as shards with an index.
/// </summary>
public sealed class ModelFolder
{
    static readonly string[] WeightNames =
    [
        "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.safetensors",
        "model.safetensors.index.json", "model.safetensors",
    ];

    readonly Dictionary<(Type, string), IModelConfig> _configs = [];
    /// <summary>Set for a component read from one weight file (<see cref="ForFile"/>): how to open it and, without a config folder, how to infer its config.</summary>
    readonly (string Path, Func<Checkpoint> Open, Func<Checkpoint, IModelConfig>? Infer)? _file;

    public string Directory { get; }
    /// <summary>The config file, or for a component whose config is inferred from its tensors, the weight file it comes from.</summary>
    public string ConfigPath => _file is { Infer: not null } file ? file.Path : Path.Combine(Directory, "config.json");
    /// <summary>The weight file of a component read from one file (a single-file checkpoint, a GGUF file, an override); null for a folder.</summary>
    public string? WeightsFile => _file?.Path;

    public ModelFolder(string directory)
    {
        if (!System.IO.Directory.Exists(directory)) throw new ModelFolderException(directory, "the model folder does not exist");
        Directory = directory;
    }

    ModelFolder(string directory, (string, Func<Checkpoint>, Func<Checkpoint, IModelConfig>?) file) : this(directory) => _file = file;

    /// <summary>
    /// A component whose weights come from <paramref name="weightsPath"/> opened by <paramref name="open"/> (a view in the
    /// model's names), with its config from <paramref name="configDirectory"/>'s <c>config.json</c> when given, otherwise
    /// inferred from the tensors by <paramref name="infer"/>.
    /// </summary>
    public static ModelFolder ForFile(string weightsPath, Func<Checkpoint> open, string? configDirectory, Func<Checkpoint, IModelConfig> infer)
    {
        var directory = configDirectory ?? Path.GetDirectoryName(Path.GetFullPath(weightsPath))!;
        return new ModelFolder(directory, (weightsPath, open, configDirectory is null ? infer : null));
    }

    /// <summary>
    /// This folder's <c>config.json</c> (or <paramref name="fileName"/>) as a validated record. It is read once:
    /// later calls return the same record, so a pipeline that checks its configs up front and the models it loads
    /// later see the same values. Every error is a <see cref="ConfigException"/> naming the file and JSON path.
    /// </summary>
    public T ReadConfig<T>(string fileName = "config.json") where T : class, IModelConfig
    {
        lock (_configs)
        {
            if (_configs.TryGetValue((typeof(T), fileName), out var cached)) return (T)cached;
            var config = _file is { Infer: { } infer } ? InferConfig<T>(infer) : ModelConfig.Read<T>(Path.Combine(Directory, fileName));
            _configs[(typeof(T), fileName)] = config;
            return config;
        }
    }

    /// <summary>The weight file or shard index; pickle-only folders are refused with the reason.</summary>
    public string WeightsPath
    {
        get
        {
            if (_file is { } file) return file.Path;
            foreach (var name in WeightNames)
            {
                var path = Path.Combine(Directory, name);
                if (File.Exists(path)) return path;
            }
            var pickles = System.IO.Directory.EnumerateFiles(Directory).Where(PickleGuard.IsPickle).ToList();
            if (pickles.Count > 0) PickleGuard.RejectPickle(pickles[0]);
            throw new ModelFolderException(Directory, $"model folder has no weights: expected one of {string.Join(", ", WeightNames)}");
        }
    }

    public Checkpoint OpenCheckpoint() => _file is { } file ? file.Open() : Checkpoint.Open(WeightsPath);

    T InferConfig<T>(Func<Checkpoint, IModelConfig> infer) where T : class, IModelConfig
    {
        using var checkpoint = OpenCheckpoint();
        return infer(checkpoint) as T ?? throw new ConfigException(ConfigPath, "$", $"holds no {typeof(T).Name}");
    }

    /// <summary>
    /// Builds a model and loads this folder's weights into it by name; a model that fails to load is disposed,
    /// so no half-loaded model escapes.
    /// </summary>
    public TModel Load<TModel>(Func<TModel> build, LoadOptions? options = null) where TModel : TorchSharp.torch.nn.Module
    {
        // Every weight comes from the checkpoint, so the model is built without initialising any (WeightInit).
        TModel model;
        using (Sd35.Layers.WeightInit.ForLoading()) model = build();
        // A shape-only model (meta device) has no storage to load into: it is built from the config alone.
        if (model.parameters().Any(Sd35.Profiling.ShapeOnly.Is))
        {
            model.eval();
            return model;
        }
        try
        {
            using var checkpoint = OpenCheckpoint();
            CheckpointLoader.Load(model, checkpoint, options);
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
