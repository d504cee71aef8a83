using System.Text.Json;
using Sd35.Errors;
using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// The tensors of one model component, from a single safetensors file or from the shards that a
/// <c>*.safetensors.index.json</c> lists. Each key knows the file it lives in, so errors can name it.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    readonly Dictionary<string, SafetensorsFile> _fileOfKey = new(StringComparer.Ordinal);
    readonly List<SafetensorsFile> _files = [];

    /// <summary>A short description of where the tensors come from, for error messages.</summary>
    public string Source { get; }
    public IEnumerable<string> Keys => _fileOfKey.Keys;

    Checkpoint(string source) => Source = source;

    /// <summary>Opens a <c>.safetensors</c> file or a <c>.safetensors.index.json</c> shard index.</summary>
    public static Checkpoint Open(string path)
    {
        PickleGuard.RejectPickle(path);
        return path.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase) ? OpenIndex(path) : OpenFiles(path, [path]);
    }

    static Checkpoint OpenFiles(string source, IEnumerable<string> paths)
    {
        var checkpoint = new Checkpoint(source);
        try
        {
            foreach (var path in paths) checkpoint.Add(SafetensorsFile.Open(path));
            return checkpoint;
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    static Checkpoint OpenIndex(string indexPath)
    {
        if (!File.Exists(indexPath)) throw new CheckpointException(indexPath, null, "checkpoint index does not exist");
        var weightMap = ReadWeightMap(indexPath);
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var shardPaths = weightMap.Values.Distinct(StringComparer.Ordinal).Select(f => ShardPath(indexPath, directory, f)).ToList();
        var checkpoint = OpenFiles(indexPath, shardPaths);
        foreach (var (key, file) in weightMap)
        {
            if (!checkpoint._fileOfKey.TryGetValue(key, out var actual))
            {
                checkpoint.Dispose();
                throw new CheckpointException(indexPath, key, $"the index lists it in '{file}', but that file has no such tensor");
            }
            if (System.IO.Path.GetFileName(actual.Path) != System.IO.Path.GetFileName(file))
            {
                checkpoint.Dispose();
                throw new CheckpointException(indexPath, key, $"the index lists it in '{file}', but it is stored in '{actual.Path}'");
            }
        }
        return checkpoint;
    }

    static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointException(indexPath, null, "checkpoint index has no 'weight_map' object");
            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(entry.Value.GetString()))
                    throw new CheckpointException(indexPath, entry.Name, "the index maps it to no file name");
                if (!weightMap.TryAdd(entry.Name, entry.Value.GetString()!))
                    throw new CheckpointException(indexPath, entry.Name, "appears twice in the index's weight_map");
            }
            return weightMap;
        }
        catch (JsonException e)
        {
            throw new CheckpointException(indexPath, null, $"checkpoint index is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>
    /// A shard must be a file in the index's own folder: an index that names <c>../x</c> or an absolute path would
    /// make the loader read files outside the model folder.
    /// </summary>
    static string ShardPath(string indexPath, string directory, string file)
    {
        if (System.IO.Path.IsPathRooted(file) || file.Contains('/') || file.Contains('\\') || file is "." or "..")
            throw new CheckpointException(indexPath, null, $"shard '{file}' is not a file name in the index's folder (paths that leave the model folder are refused)");
        var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(directory, file));
        if (System.IO.Path.GetDirectoryName(full) != directory)
            throw new CheckpointException(indexPath, null, $"shard '{file}' resolves outside the index's folder");
        return full;
    }

    void Add(SafetensorsFile file)
    {
        _files.Add(file);
        foreach (var key in file.Keys)
        {
            if (_fileOfKey.TryGetValue(key, out var other))
                throw new CheckpointException(file.Path, key, $"is stored twice: in '{other.Path}' and in '{file.Path}'");
            _fileOfKey[key] = file;
        }
    }

    public bool Contains(string key) => _fileOfKey.ContainsKey(key);

    public SafetensorsFile FileOf(string key) =>
        _fileOfKey.TryGetValue(key, out var file) ? file : throw new CheckpointException(Source, key, "no such tensor in the checkpoint");

    public TensorEntry Entry(string key) => FileOf(key).Entry(key);

    public Tensor Read(string key) => FileOf(key).Read(key);

    public void ReadInto(string key, Tensor target) => FileOf(key).ReadInto(key, target);

    /// <summary>Reads into a tensor that owns its storage (a parameter), which may be re-seated (<see cref="SafetensorsFile.ReadIntoOwned"/>).</summary>
    public void ReadIntoOwned(string key, Tensor target) => FileOf(key).ReadIntoOwned(key, target);

    public void Dispose()
    {
        foreach (var file in _files) file.Dispose();
        _files.Clear();
        _fileOfKey.Clear();
    }
}
