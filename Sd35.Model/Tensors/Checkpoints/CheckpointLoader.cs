using System.Text;
using Sd35.Errors;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// Loads a checkpoint into a module by name lookup: the module's state-dict names are the checkpoint keys.
/// Strict by default: a parameter the checkpoint lacks, a checkpoint key the module lacks, a shape mismatch and a
/// dtype of the wrong kind (integers for a float parameter) are all errors that name the file and the key.
/// <see cref="Verify"/> runs the same matching on headers only, against a model built on the meta device, so a
/// run can refuse a mismatched checkpoint before it loads anything.
/// </summary>
public static class CheckpointLoader
{
    const int MaxListed = 20;

    public static void Load(nn.Module module, Checkpoint checkpoint, LoadOptions? options = null) =>
        Match(module, checkpoint, options ?? LoadOptions.Strict, read: true);

    /// <summary>
    /// Checks names, shapes and dtypes of <paramref name="checkpoint"/> against <paramref name="module"/> without
    /// reading a single weight; build the module on the meta device (<see cref="MetaModels"/>) so it costs no memory.
    /// </summary>
    public static void Verify(nn.Module module, Checkpoint checkpoint, LoadOptions? options = null) =>
        Match(module, checkpoint, options ?? LoadOptions.Strict, read: false);

    static void Match(nn.Module module, Checkpoint checkpoint, LoadOptions options, bool read)
    {
        var modules = module.named_modules().ToDictionary(m => m.name, m => m.module);
        // A layer loaded on its own is the root, which named_modules leaves out (its parameters' owner is "").
        modules.TryAdd("", module);
        if (read) StoredWeights.Prepare(modules.Values, options.Storage);
        var state = module.state_dict();
        var used = new HashSet<string>(StringComparer.Ordinal);
        var missing = new List<string>();
        var mismatched = new List<(int Order, string Key, string Problem)>();
        var reads = new List<(int Order, string Key, Func<string?> Load)>();

        using var noGrad = no_grad();
        foreach (var (order, (name, target)) in state.Index())
        {
            var key = FindKey(checkpoint, name, options);
            if (key is null)
            {
                missing.Add(name);
                continue;
            }
            used.Add(key);
            if (options.Aliases.TryGetValue(name, out var aliases)) used.UnionWith(aliases.Where(checkpoint.Contains));
            string? problem = null;
            Func<string?>? load = null;
            if (StoredWeights.Owner(modules, name) is { } stored && StoredWeights.TakesBlocks(checkpoint, key, options.Storage))
            {
                if (read) load = () => StoredWeights.Load(checkpoint, key, stored, options.Storage);
                else problem = ShapeProblem(checkpoint, key, target);
            }
            else if (checkpoint.BlockTypeOf(key) is not null)
            {
                problem = BlocksProblem(checkpoint, key, target);
                if (problem is null && read) load = () => LoadExpanded(checkpoint, key, target, ShardingOwner(modules, name));
                else if (problem is null) problem = ShapeProblem(checkpoint, key, target);
            }
            else
            {
                problem = DTypeProblem(checkpoint, key, target) ?? (read ? null : ShapeProblem(checkpoint, key, target));
                var owner = ShardingOwner(modules, name);
                if (problem is null && read) load = () => LoadOne(checkpoint, key, target, owner);
            }
            if (problem is not null) mismatched.Add((order, key, problem));
            else if (load is not null) reads.Add((order, key, load));
        }
        // In file order, not the module's: each read then continues where the last ended, and the file is read ahead
        // of the loader as one stream (SafetensorsFile) instead of seeking to wherever the next parameter lives.
        foreach (var (order, key, load) in reads.OrderBy(r => checkpoint.PathOf(r.Key), StringComparer.Ordinal).ThenBy(r => checkpoint.OffsetOf(r.Key)))
        {
            var problem = load();
            if (problem is not null) mismatched.Add((order, key, problem));
        }
        mismatched.Sort((a, b) => a.Order.CompareTo(b.Order)); // reported in the module's order, as they were found before

        var unexpected = checkpoint.Keys.Where(k => k.StartsWith(options.KeyPrefix, StringComparison.Ordinal) && !used.Contains(k) && !options.IgnoreUnexpected(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (missing.Count + mismatched.Count + unexpected.Count > 0)
        {
            // The first culprit becomes the exception's key; the message lists them all (up to a limit).
            var key = mismatched.Select(m => m.Key).Concat(missing).Concat(unexpected).First();
            throw new CheckpointException(checkpoint.Source, key, Describe(checkpoint, module, missing, unexpected, mismatched.Select(m => m.Problem).ToList()));
        }
    }

    static string? FindKey(Checkpoint checkpoint, string name, LoadOptions options)
    {
        if (checkpoint.Contains(options.KeyPrefix + name)) return options.KeyPrefix + name;
        return options.Aliases.TryGetValue(name, out var aliases) ? aliases.FirstOrDefault(checkpoint.Contains) : null;
    }

    static (IShardedParameters Module, string LocalName)? ShardingOwner(Dictionary<string, nn.Module> modules, string name)
    {
        int dot = name.LastIndexOf('.');
        var owner = dot < 0 ? "" : name[..dot];
        return modules.TryGetValue(owner, out var module) && module is IShardedParameters sharded
            ? (sharded, name[(dot + 1)..])
            : null;
    }

    /// <summary>Floats convert into floats (bf16 weights into an fp32 model); integers or booleans into a float parameter mean the wrong tensor.</summary>
    static string? DTypeProblem(Checkpoint checkpoint, string key, Tensor target)
    {
        var entry = checkpoint.Entry(key);
        return is_floating_point(target) == IsFloating(entry.DType)
            ? null
            : $"'{key}' in '{checkpoint.FileOf(key).Path}': checkpoint dtype {entry.StorageName}, model dtype {target.dtype}";
    }

    static bool IsFloating(ScalarType type) => type is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64;

    static string? ShapeProblem(Checkpoint checkpoint, string key, Tensor target)
    {
        var shape = checkpoint.ShapeOf(key);
        return shape.SequenceEqual(target.shape)
            ? null
            : $"'{key}' in '{checkpoint.PathOf(key)}': checkpoint shape {Text(shape)}, model shape {Text(target.shape)}";
    }

    /// <summary>Blocks expand to floats only: where the model needs an exact (integer) dtype they are the wrong tensor, found by <see cref="Verify"/> too.</summary>
    static string? BlocksProblem(Checkpoint checkpoint, string key, Tensor target) =>
        is_floating_point(target) ? null : $"'{key}' in '{checkpoint.PathOf(key)}': checkpoint holds {checkpoint.BlockTypeOf(key)} blocks, model dtype {target.dtype}";

    /// <summary>Blocks or fp8 where the model holds a float parameter (not a storable weight): expanded, then loaded as a float tensor.</summary>
    static string? LoadExpanded(Checkpoint checkpoint, string key, Tensor target, (IShardedParameters Module, string LocalName)? owner)
    {
        using var full = checkpoint.ReadValues(key, target.dtype);
        return CopyPiece(checkpoint, key, full, target, owner);
    }

    static string? CopyPiece(Checkpoint checkpoint, string key, Tensor full, Tensor target, (IShardedParameters Module, string LocalName)? owner)
    {
        using var piece = owner is { } sharded && !sharded.Module.HoldsWhole(sharded.LocalName) ? sharded.Module.ShardFromFull(sharded.LocalName, full) : null;
        var value = piece ?? full;
        if (!value.shape.SequenceEqual(target.shape))
            return $"'{key}' in '{checkpoint.PathOf(key)}': checkpoint shape {Text(checkpoint.ShapeOf(key))}{(piece is null ? "" : $" (this rank's piece {Text(piece.shape)})")}, model shape {Text(target.shape)}";
        target.copy_(value);
        return null;
    }

    static string? LoadOne(Checkpoint checkpoint, string key, Tensor target, (IShardedParameters Module, string LocalName)? owner)
    {
        var entry = checkpoint.Entry(key);
        if (owner is { } sharded && !sharded.Module.HoldsWhole(sharded.LocalName))
        {
            using var full = checkpoint.Read(key);
            using var piece = sharded.Module.ShardFromFull(sharded.LocalName, full);
            if (piece is not null)
            {
                if (!piece.shape.SequenceEqual(target.shape))
                    return $"'{key}' in '{checkpoint.FileOf(key).Path}': shard of checkpoint shape {entry.ShapeText} is {Text(piece.shape)}, parameter is {Text(target.shape)}";
                target.copy_(piece);
                return null;
            }
        }
        var problem = ShapeProblem(checkpoint, key, target);
        if (problem is null) checkpoint.ReadIntoOwned(key, target);
        return problem;
    }

    internal static string Text(long[] shape) => $"[{string.Join(", ", shape)}]";

    static string Describe(Checkpoint checkpoint, nn.Module module, List<string> missing, List<string> unexpected, List<string> mismatched)
    {
        // One line, as every input error is (the demo prints it as its one line): sections apart by "; ", items by ", ".
        var text = new StringBuilder($"does not match {module.GetName()}:");
        string separator = " ";
        void Section(string title, List<string> items)
        {
            if (items.Count == 0) return;
            text.Append($"{separator}{title} ({items.Count}): {string.Join(", ", items.Take(MaxListed))}");
            if (items.Count > MaxListed) text.Append($", … and {items.Count - MaxListed} more");
            separator = "; ";
        }
        Section("missing keys (in the model, not in the checkpoint)", missing);
        Section("unexpected keys (in the checkpoint, not in the model)", unexpected.Select(k => $"{k} (in '{checkpoint.PathOf(k)}')").ToList());
        Section("shape or dtype mismatches", mismatched);
        return text.ToString();
    }
}
