using System.Text.Json;
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
        if (!File.Exists(indexPath)) throw new FileNotFoundException($"Checkpoint index '{indexPath}' does not exist.", indexPath);
        Dictionary<string, string> weightMap;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(indexPath));
            if (!document.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"Checkpoint index '{indexPath}' has no 'weight_map' object.");
            weightMap = map.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()
                ?? throw new InvalidDataException($"Checkpoint index '{indexPath}': key '{p.Name}' maps to no file."));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Checkpoint index '{indexPath}' is not valid JSON: {e.Message}", e);
        }

        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var shardPaths = weightMap.Values.Distinct().Select(f => System.IO.Path.Combine(directory, f)).ToList();
        var checkpoint = OpenFiles(indexPath, shardPaths);
        foreach (var (key, file) in weightMap)
        {
            if (!checkpoint._fileOfKey.TryGetValue(key, out var actual))
            {
                checkpoint.Dispose();
                throw new InvalidDataException($"Checkpoint index '{indexPath}' lists '{key}' in '{file}', but that file has no such tensor.");
            }
            if (System.IO.Path.GetFileName(actual.Path) != System.IO.Path.GetFileName(file))
            {
                checkpoint.Dispose();
                throw new InvalidDataException($"Checkpoint index '{indexPath}' lists '{key}' in '{file}', but it is stored in '{actual.Path}'.");
            }
        }
        return checkpoint;
    }

    void Add(SafetensorsFile file)
    {
        _files.Add(file);
        foreach (var key in file.Keys)
        {
            if (_fileOfKey.TryGetValue(key, out var other))
                throw new InvalidDataException($"Tensor '{key}' is stored twice: in '{other.Path}' and in '{file.Path}'.");
            _fileOfKey[key] = file;
        }
    }

    public bool Contains(string key) => _fileOfKey.ContainsKey(key);

    public SafetensorsFile FileOf(string key) =>
        _fileOfKey.TryGetValue(key, out var file) ? file : throw new KeyNotFoundException($"{Source} has no tensor '{key}'.");

    public TensorEntry Entry(string key) => FileOf(key).Entry(key);

    public Tensor Read(string key) => FileOf(key).Read(key);

    public void ReadInto(string key, Tensor target) => FileOf(key).ReadInto(key, target);

    public void Dispose()
    {
        foreach (var file in _files) file.Dispose();
        _files.Clear();
        _fileOfKey.Clear();
    }
}
