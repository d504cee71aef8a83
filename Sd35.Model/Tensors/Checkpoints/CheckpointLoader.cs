using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// Loads a checkpoint into a module by name lookup: the module's state-dict names are the checkpoint keys.
/// Strict by default: a parameter the checkpoint lacks, a checkpoint key the module lacks and a shape
/// mismatch are all errors that name the file and the key.
/// </summary>
public static class CheckpointLoader
{
    const int MaxListed = 20;

    public static void Load(nn.Module module, Checkpoint checkpoint, LoadOptions? options = null)
    {
        options ??= LoadOptions.Strict;
        var modules = module.named_modules().ToDictionary(m => m.name, m => m.module);
        var state = module.state_dict();
        var used = new HashSet<string>(StringComparer.Ordinal);
        var missing = new List<string>();
        var mismatched = new List<string>();

        using var noGrad = no_grad();
        foreach (var (name, target) in state)
        {
            var key = FindKey(checkpoint, name, options);
            if (key is null)
            {
                missing.Add(name);
                continue;
            }
            used.Add(key);
            if (options.Aliases.TryGetValue(name, out var aliases)) used.UnionWith(aliases.Where(checkpoint.Contains));
            if (!LoadOne(checkpoint, key, target, ShardingOwner(modules, name), out var problem)) mismatched.Add(problem);
        }

        var unexpected = checkpoint.Keys.Where(k => k.StartsWith(options.KeyPrefix, StringComparison.Ordinal) && !used.Contains(k) && !options.IgnoreUnexpected(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (missing.Count + mismatched.Count + unexpected.Count > 0)
            throw new InvalidDataException(Describe(checkpoint, module, missing, unexpected, mismatched));
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

    static bool LoadOne(Checkpoint checkpoint, string key, Tensor target, (IShardedParameters Module, string LocalName)? owner, out string problem)
    {
        var entry = checkpoint.Entry(key);
        problem = "";
        if (owner is { } sharded && !sharded.Module.HoldsWhole(sharded.LocalName))
        {
            using var full = checkpoint.Read(key);
            using var piece = sharded.Module.ShardFromFull(sharded.LocalName, full);
            if (piece is not null)
            {
                if (!piece.shape.SequenceEqual(target.shape))
                {
                    problem = $"'{key}' in '{checkpoint.FileOf(key).Path}': shard of checkpoint shape {entry.ShapeText} is {Text(piece.shape)}, parameter is {Text(target.shape)}";
                    return false;
                }
                target.copy_(piece);
                return true;
            }
        }
        if (!entry.Shape.SequenceEqual(target.shape))
        {
            problem = $"'{key}' in '{checkpoint.FileOf(key).Path}': checkpoint shape {entry.ShapeText}, model shape {Text(target.shape)}";
            return false;
        }
        checkpoint.ReadInto(key, target);
        return true;
    }

    static string Text(long[] shape) => $"[{string.Join(", ", shape)}]";

    static string Describe(Checkpoint checkpoint, nn.Module module, List<string> missing, List<string> unexpected, List<string> mismatched)
    {
        var text = new StringBuilder($"Checkpoint {checkpoint.Source} does not match {module.GetName()}:");
        void Section(string title, List<string> items)
        {
            if (items.Count == 0) return;
            text.Append($"\n  {title} ({items.Count}):");
            foreach (var item in items.Take(MaxListed)) text.Append($"\n    {item}");
            if (items.Count > MaxListed) text.Append($"\n    … and {items.Count - MaxListed} more");
        }
        Section("missing keys (in the model, not in the checkpoint)", missing);
        Section("unexpected keys (in the checkpoint, not in the model)", unexpected.Select(k => $"{k} (in '{checkpoint.FileOf(k).Path}')").ToList());
        Section("shape mismatches", mismatched);
        return text.ToString();
    }
}
