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

    public string Directory { get; }
    public string ConfigPath => Path.Combine(Directory, "config.json");

    public ModelFolder(string directory)
    {
        if (!System.IO.Directory.Exists(directory)) throw new ModelFolderException(directory, "the model folder does not exist");
        Directory = directory;
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
            var config = ModelConfig.Read<T>(Path.Combine(Directory, fileName));
            _configs[(typeof(T), fileName)] = config;
            return config;
        }
    }

    /// <summary>The weight file or shard index; pickle-only folders are refused with the reason.</summary>
    public string WeightsPath
    {
        get
        {
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

    public Checkpoint OpenCheckpoint() => Checkpoint.Open(WeightsPath);

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
