using Sd35.Errors;
using static TorchSharp.torch;

namespace Sd35.Tensors.Checkpoints.Layouts;

/// <summary>
/// Another checkpoint seen under the model's names through <see cref="KeyRule"/>s: a key with a rule reads its stored
/// tensor and cuts or reorders it; every stored key no rule uses stays visible under its own name, so the strict
/// loader reports it as unexpected. A piece is materialised at read (tensor-parallel loading then shards the piece as
/// it would a whole tensor). The last few stored tensors are kept, so the three pieces of a fused qkv read it once.
/// </summary>
sealed class MappedTensors : ITensorFile
{
    const int Cached = 4;

    readonly Checkpoint _stored;
    readonly Dictionary<string, (KeyRule? Rule, TensorEntry Entry)> _entries = new(StringComparer.Ordinal);
    readonly List<(string Key, Tensor Value)> _recent = [];

    public string Path { get; }
    public IEnumerable<string> Keys => _entries.Keys;

    /// <param name="stored">the checkpoint in its own names; this view owns and disposes it</param>
    /// <param name="rules">rules whose stored key is absent are skipped; a rule for a model key two stored keys claim is an error of the rules</param>
    /// <param name="keep">the stored keys this view shows (others, e.g. another component's, are left out); null: all</param>
    public MappedTensors(Checkpoint stored, IEnumerable<KeyRule> rules, Func<string, bool>? keep = null)
    {
        _stored = stored;
        Path = stored.Source;
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var rule in rules)
        {
            if (!stored.Contains(rule.Stored)) continue;
            var entry = stored.Entry(rule.Stored);
            if (rule.Chunks > 1 && entry.Shape.Length > 0 && entry.Shape[0] % rule.Chunks != 0)
                throw new CheckpointException(stored.FileOf(rule.Stored).Path, rule.Stored, $"shape {entry.ShapeText} does not split into {rule.Chunks} equal row blocks");
            _entries[rule.Model] = (rule, entry with { Key = rule.Model, Shape = rule.ModelShape(entry.Shape) });
            used.Add(rule.Stored);
        }
        foreach (var key in stored.Keys)
            if (!used.Contains(key) && (keep?.Invoke(key) ?? true) && !_entries.ContainsKey(key))
                _entries[key] = (null, stored.Entry(key));
    }

    public TensorEntry Entry(string key) =>
        _entries.TryGetValue(key, out var e) ? e.Entry : throw new CheckpointException(Path, key, "no such tensor in the checkpoint");

    public Tensor Read(string key)
    {
        var (rule, _) = _entries.TryGetValue(key, out var e) ? e : throw new CheckpointException(Path, key, "no such tensor in the checkpoint");
        if (rule is null || rule.IsRename) return _stored.Read(rule?.Stored ?? key);
        return rule.ToModel(Stored(rule.Stored));
    }

    public void ReadInto(string key, Tensor target)
    {
        if (_entries.TryGetValue(key, out var e) && (e.Rule is null || e.Rule.IsRename))
        {
            _stored.ReadInto(e.Rule?.Stored ?? key, target);
            return;
        }
        using var noGrad = no_grad();
        using var piece = Read(key);
        target.copy_(piece);
    }

    Tensor Stored(string key)
    {
        lock (_recent)
        {
            foreach (var (k, v) in _recent) if (k == key) return v;
            var value = _stored.Read(key);
            _recent.Add((key, value));
            if (_recent.Count > Cached)
            {
                _recent[0].Value.Dispose();
                _recent.RemoveAt(0);
            }
            return value;
        }
    }

    public void Dispose()
    {
        foreach (var (_, v) in _recent) v.Dispose();
        _recent.Clear();
        _stored.Dispose();
    }
}
