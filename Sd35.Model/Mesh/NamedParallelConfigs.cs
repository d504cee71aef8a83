using System.Text.RegularExpressions;

namespace Sd35.Mesh;

/// <summary>A registered parallel config: the id tests are selected by, and the reference's new-style alias if any.</summary>
public sealed record NamedParallelConfig(string Id, ParallelConfig Config, string? Alias = null);

/// <summary>
/// The configurations the project tests and runs, under ids <c>&lt;system&gt;_cfg&lt;c&gt;_sp&lt;s&gt;_tp&lt;t&gt;</c>
/// (the reference's G1 style, factors in the name). Test selection matches ids as substrings, so no id or alias
/// may be contained in another; the registry enforces that when it is built. The reference's G3 ids
/// (<c>2x4cfg1sp0tp1</c>: mesh and axes, not factors) are accepted as aliases of the config they denote.
/// </summary>
public static partial class NamedParallelConfigs
{
    static readonly NamedParallelConfig[] Registered = Build(
        ("n150_cfg1_sp1_tp1", 1, 1, (1, 0), (1, 0), (1, 1), null),
        ("n300_cfg1_sp1_tp2", 1, 2, (1, 0), (1, 0), (2, 1), null),
        ("n300_cfg1_sp2_tp1", 2, 1, (1, 0), (2, 0), (1, 1), null),
        ("qb_cfg1_sp2_tp2", 2, 2, (1, 0), (2, 0), (2, 1), null),
        ("qb_cfg1_sp1_tp4", 1, 4, (1, 0), (1, 0), (4, 1), "1x4cfg0sp0tp1"),
        ("t3k_cfg2_sp2_tp2", 2, 4, (2, 1), (2, 0), (2, 1), "2x4cfg1sp0tp1"),
        ("t3k_cfg2_sp1_tp4", 2, 4, (2, 0), (1, 0), (4, 1), "2x4cfg0sp0tp1"),
        ("t3k_cfg1_sp2_tp4", 2, 4, (1, 0), (2, 0), (4, 1), null),
        ("tg_cfg2_sp4_tp4", 4, 8, (2, 1), (4, 0), (4, 1), "4x8cfg1sp0tp1"));

    public static IReadOnlyList<NamedParallelConfig> All => Registered;

    /// <summary>The systems ids may name, from the registry.</summary>
    public static IReadOnlyList<string> Systems => Registered.Select(n => SystemOf(n.Id)).Distinct().ToArray();

    public static NamedParallelConfig Get(string id) =>
        Find(id) ?? throw new FormatException($"no parallel config is registered as '{id}'; known: {string.Join(", ", Registered.Select(n => n.Id))}");

    internal static string? IdOf(ParallelConfig config) => Registered.FirstOrDefault(n => n.Config == config)?.Id;

    internal static ParallelConfig Parse(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        var named = Find(id);
        if (named is not null) return named.Config;
        var old = OldStyle().Match(id);
        if (old.Success)
        {
            string system = old.Groups[1].Value.ToLowerInvariant();
            if (!Systems.Contains(system))
                throw new FormatException($"'{id}': unknown system '{system}'; known systems: {string.Join(", ", Systems)}");
            throw new FormatException($"'{id}': no such config on {system}; {system} configs: {string.Join(", ", Registered.Where(n => SystemOf(n.Id) == system).Select(n => n.Id))}");
        }
        if (NewStyle().IsMatch(id))
            throw new FormatException($"'{id}': no config is registered under this reference id; known: {string.Join(", ", Registered.Where(n => n.Alias is not null).Select(n => $"{n.Alias} (= {n.Id})"))}");
        throw new FormatException($"'{id}' is not a parallel-config id: expected <system>_cfg<c>_sp<s>_tp<t> (e.g. t3k_cfg2_sp2_tp2) " +
                                  "or the reference's <rows>x<cols>cfg<axis>sp<axis>tp<axis> (e.g. 2x4cfg1sp0tp1)");
    }

    static NamedParallelConfig? Find(string id) =>
        Registered.FirstOrDefault(n => string.Equals(n.Id, id, StringComparison.OrdinalIgnoreCase) || string.Equals(n.Alias, id, StringComparison.OrdinalIgnoreCase));

    static string SystemOf(string id) => id[..id.IndexOf('_')];

    static NamedParallelConfig[] Build(params (string Id, int Rows, int Cols, (int, int) Cfg, (int, int) Sp, (int, int) Tp, string? Alias)[] rows)
    {
        var all = rows.Select(r => new NamedParallelConfig(r.Id, new ParallelConfig(new MeshShape(r.Rows, r.Cols), r.Cfg, r.Sp, r.Tp), r.Alias)).ToArray();
        foreach (var n in all)
        {
            var c = n.Config;
            // The id repeats the factors; a typo in either place would silently select the wrong config.
            if (!OldStyle().IsMatch(n.Id) || n.Id != $"{SystemOf(n.Id)}_cfg{c.Cfg.Factor}_sp{c.Sp.Factor}_tp{c.Tp.Factor}")
                throw new InvalidOperationException($"registered id {n.Id} does not spell its config {c}");
            if (n.Alias is not null && n.Alias != $"{c.Mesh}cfg{c.Cfg.Axis}sp{c.Sp.Axis}tp{c.Tp.Axis}")
                throw new InvalidOperationException($"alias {n.Alias} of {n.Id} does not spell its config {c}");
        }
        var names = all.SelectMany(n => n.Alias is null ? [n.Id] : new[] { n.Id, n.Alias }).ToArray();
        foreach (var a in names)
            foreach (var b in names)
                if (a != b && b.Contains(a, StringComparison.OrdinalIgnoreCase))
                    throw new InvalidOperationException($"config id {a} is contained in {b}; test selection by substring would pick both");
        return all;
    }

    [GeneratedRegex("^([a-z][a-z0-9]*)_cfg([0-9]+)_sp([0-9]+)_tp([0-9]+)$", RegexOptions.IgnoreCase)]
    private static partial Regex OldStyle();

    [GeneratedRegex("^[0-9]+x[0-9]+cfg[01]sp[01]tp[01]$", RegexOptions.IgnoreCase)]
    private static partial Regex NewStyle();
}
