using System.Text.Json;
using Sd35.Errors;
using Sd35.Tensors.Quantization;
using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// The tensors of one model component, from a single safetensors file, from the shards that a
/// <c>*.safetensors.index.json</c> lists, from a GGUF file, or from a view that maps another layout's names onto the
/// model's (<see cref="FromFiles"/>). Each key knows the file it lives in, so errors can name it.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    readonly Dictionary<string, ITensorFile> _fileOfKey = new(StringComparer.Ordinal);
    readonly List<ITensorFile> _files = [];
    readonly Dictionary<string, QuantizedWeight> _blocks = new(StringComparer.Ordinal);

    /// <summary>A short description of where the tensors come from, for error messages.</summary>
    public string Source { get; }
    public IEnumerable<string> Keys => _fileOfKey.Keys.Concat(_blocks.Keys);

    Checkpoint(string source) => Source = source;

    /// <summary>Opens a <c>.safetensors</c> file, a <c>.safetensors.index.json</c> shard index or a GGUF file (by its extension or magic).</summary>
    public static Checkpoint Open(string path)
    {
        PickleGuard.RejectPickle(path);
        if (path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) || Gguf.GgufFile.HasMagic(path))
            return OpenFiles(path, [() => Gguf.GgufFile.Open(path)]);
        return path.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase) ? OpenIndex(path) : OpenFiles(path, [path]);
    }

    /// <summary>A checkpoint over tensor sources already open (a GGUF file, a renaming view); it owns and disposes them.</summary>
    public static Checkpoint FromFiles(string source, IEnumerable<ITensorFile> files) => OpenFiles(source, files.Select(f => (Func<ITensorFile>)(() => f)));

    static Checkpoint OpenFiles(string source, IEnumerable<string> paths) => OpenFiles(source, paths.Select(p => (Func<ITensorFile>)(() => SafetensorsFile.Open(p))));

    static Checkpoint OpenFiles(string source, IEnumerable<Func<ITensorFile>> opens)
    {
        var checkpoint = new Checkpoint(source);
        try
        {
            foreach (var open in opens) checkpoint.Add(open());
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

    void Add(ITensorFile file)
    {
        _files.Add(file);
        foreach (var key in file.Keys)
        {
            if (_fileOfKey.TryGetValue(key, out var other))
                throw new CheckpointException(file.Path, key, $"is stored twice: in '{other.Path}' and in '{file.Path}'");
            _fileOfKey[key] = file;
        }
    }

    public bool Contains(string key) => _fileOfKey.ContainsKey(key) || _blocks.ContainsKey(key);

    /// <summary>
    /// Adds a tensor held as ggml blocks (a GGUF file's quantized tensor, or blocks a test made), read as it is:
    /// the loader hands it to the layer as blocks (<see cref="IStoredWeight"/>), or expands it for any other
    /// parameter. Takes ownership of <paramref name="blocks"/>.
    /// </summary>
    public void AddBlocks(string key, QuantizedWeight blocks)
    {
        if (Contains(key))
        {
            blocks.Dispose();
            throw new CheckpointException(Source, key, "is stored twice");
        }
        _blocks[key] = blocks;
    }

    /// <summary>
    /// The packed format <paramref name="key"/> is stored in (<see cref="PackedFormat"/>: a GGUF file's quantized tensor,
    /// a safetensors fp8 tensor, or blocks added here), or null for a plain float or integer tensor.
    /// </summary>
    public GgmlType? BlockTypeOf(string key)
    {
        if (_blocks.TryGetValue(key, out var blocks)) return blocks.Type;
        return _fileOfKey.TryGetValue(key, out var file) ? file.Entry(key).Quantized : null;
    }

    /// <summary>A copy of the blocks (or fp8 bytes) stored under <paramref name="key"/> (the caller owns it): read from its file as raw rows, or copied.</summary>
    public QuantizedWeight ReadBlocks(string key)
    {
        if (_blocks.TryGetValue(key, out var blocks)) return blocks.Clone();
        if (BlockTypeOf(key) is not { } type) throw new CheckpointException(PathOf(key), key, "is not stored as ggml blocks");
        return QuantizedWeight.FromBlocks(type, Entry(key).Shape, Read(key));
    }

    /// <summary>
    /// The values under <paramref name="key"/> as a new CPU tensor of <paramref name="dtype"/>, whatever form they are
    /// stored in: blocks and fp8 expanded (fp8 of any shape, a scalar or no elements too), anything else converted.
    /// </summary>
    public Tensor ReadValues(string key, ScalarType dtype)
    {
        if (_blocks.TryGetValue(key, out var blocks)) return blocks.Dequantize(dtype);
        using var stored = Read(key);
        return BlockTypeOf(key) is { } packed ? PackedFormat.Expand(stored, packed, ShapeOf(key), dtype) : stored.to(dtype);
    }

    /// <summary>The shape of the values under <paramref name="key"/>, whatever form they are stored in.</summary>
    public long[] ShapeOf(string key) => _blocks.TryGetValue(key, out var blocks) ? blocks.Shape : Entry(key).Shape;

    /// <summary>The file <paramref name="key"/> comes from, for messages (the checkpoint's source for blocks added in memory).</summary>
    public string PathOf(string key) => _fileOfKey.TryGetValue(key, out var file) ? file.Path : Source;

    /// <summary>Where <paramref name="key"/>'s data starts in its file (0 for blocks added in memory): the loader reads in this order.</summary>
    public long OffsetOf(string key) => _fileOfKey.TryGetValue(key, out var file) ? file.Entry(key).Begin : 0;

    public ITensorFile FileOf(string key) =>
        _fileOfKey.TryGetValue(key, out var file) ? file : throw new CheckpointException(Source, key, "no such tensor in the checkpoint");

    public TensorEntry Entry(string key) => FileOf(key).Entry(key);

    public Tensor Read(string key) => FileOf(key).Read(key);

    public void ReadInto(string key, Tensor target) => FileOf(key).ReadInto(key, target);

    /// <summary>Reads into a tensor that owns its storage (a parameter), which may be re-seated (<see cref="SafetensorsFile.ReadIntoOwned"/>).</summary>
    public void ReadIntoOwned(string key, Tensor target) => FileOf(key).ReadIntoOwned(key, target);

    public void Dispose()
    {
        foreach (var file in _files) file.Dispose();
        foreach (var blocks in _blocks.Values) blocks.Dispose();
        _blocks.Clear();
        _files.Clear();
        _fileOfKey.Clear();
    }
}
