namespace Sd35.Mesh;

/// <summary>One kind of parallelism: how many ways, and along which mesh axis.</summary>
public readonly record struct ParallelFactor(int Factor, int Axis)
{
    public static implicit operator ParallelFactor((int Factor, int Axis) t) => new(t.Factor, t.Axis);
    public override string ToString() => $"({Factor},{Axis})";
}

/// <summary>
/// How a run splits over its mesh: the reference's tuple <c>((cfg_factor, cfg_axis), (sp_factor, sp_axis),
/// (tp_factor, tp_axis))</c> (cfg submesh 0 runs the unconditional branch, 1 the conditional). The constructor
/// checks everything that depends only on the mesh; <see cref="ValidateFor"/> adds the model-dependent checks.
/// </summary>
public sealed record ParallelConfig
{
    public MeshShape Mesh { get; }
    public ParallelFactor Cfg { get; }
    public ParallelFactor Sp { get; }
    public ParallelFactor Tp { get; }

    /// <exception cref="ArgumentException">the tuple does not fit the mesh; the message says what is wrong</exception>
    public ParallelConfig(MeshShape mesh, ParallelFactor cfg, ParallelFactor sp, ParallelFactor tp)
    {
        Mesh = mesh;
        Cfg = cfg;
        Sp = sp;
        Tp = tp;
        var problem = MeshProblem();
        if (problem is not null) throw new ArgumentException($"invalid parallel config {this}: {problem}");
    }

    /// <summary>Ring-parallel factor of the attention: the reference ties it to sp.</summary>
    public int Rp => Sp.Factor;

    /// <summary>Ulysses (head-parallel) factor of the attention: the reference ties it to tp.</summary>
    public int Up => Tp.Factor;

    /// <summary>The shape of each CFG branch's submesh: sp_factor on sp_axis × tp_factor on tp_axis.</summary>
    public MeshShape Submesh => SubmeshFor(Sp, Tp);

    public int DeviceCount => Mesh.Size;

    /// <summary>The registered id of this config (e.g. <c>t3k_cfg2_sp2_tp2</c>), or null for an unnamed one.</summary>
    public string? Id => NamedParallelConfigs.IdOf(this);

    /// <summary>Heads after zero padding so that tp divides them (<see cref="HeadPadding"/>).</summary>
    public int PaddedHeads(int heads) => HeadPadding.Padded(heads, Tp.Factor);

    /// <summary>Heads each tp rank computes, padding included.</summary>
    public int LocalHeads(int heads) => HeadPadding.PerRank(heads, Tp.Factor);

    public bool NeedsHeadPadding(int heads) => HeadPadding.IsNeeded(heads, Tp.Factor);

    /// <summary>
    /// Model-dependent checks: sp must divide the spatial tokens, tp the hidden features. Heads that tp does not
    /// divide are not an error; they are padded (<see cref="PaddedHeads"/>).
    /// </summary>
    /// <exception cref="ArgumentException">lists every problem found</exception>
    public void ValidateFor(long spatialTokens, int heads, long hiddenDim)
    {
        var problems = new List<string>();
        if (spatialTokens < 1) problems.Add($"the spatial sequence must have at least one token, got {spatialTokens}");
        else if (spatialTokens % Sp.Factor != 0)
            problems.Add($"sp {Sp.Factor} does not divide the {spatialTokens} spatial tokens ({spatialTokens % Sp.Factor} left over)");
        if (heads < 1) problems.Add($"attention needs at least one head, got {heads}");
        if (hiddenDim % Tp.Factor != 0)
            problems.Add($"tp {Tp.Factor} does not divide the hidden dim {hiddenDim} ({hiddenDim % Tp.Factor} left over)");
        if (problems.Count > 0)
            throw new ArgumentException($"parallel config {Id ?? ToString()} does not fit the model: {string.Join("; ", problems)}");
    }

    /// <summary>Looks up a registered id, old style (<c>t3k_cfg2_sp2_tp2</c>) or new style (<c>2x4cfg1sp0tp1</c>).</summary>
    /// <exception cref="FormatException">malformed id, unknown system, or no config of that name</exception>
    public static ParallelConfig Parse(string id) => NamedParallelConfigs.Parse(id);

    public override string ToString() => $"{Mesh} cfg{Cfg} sp{Sp} tp{Tp}";

    static MeshShape SubmeshFor(ParallelFactor sp, ParallelFactor tp)
    {
        var shape = new MeshShape(1, 1);
        shape = shape.With(sp.Axis, shape[sp.Axis] * sp.Factor);
        return shape.With(tp.Axis, shape[tp.Axis] * tp.Factor);
    }

    string? MeshProblem()
    {
        foreach (var (name, f) in new[] { ("cfg", Cfg), ("sp", Sp), ("tp", Tp) })
        {
            if (f.Factor < 1) return $"{name} factor must be at least 1, got {f.Factor}";
            if (f.Axis is not (0 or 1)) return $"{name} axis must be 0 (rows) or 1 (columns), got {f.Axis}";
        }
        if (Cfg.Factor > 2)
            return $"cfg factor must be 1 or 2 (classifier-free guidance has two branches), got {Cfg.Factor}";
        if (Sp.Factor > 1 && Tp.Factor > 1 && Sp.Axis == Tp.Axis)
            return $"sp {Sp.Factor} and tp {Tp.Factor} are both on axis {Sp.Axis}; sequence and tensor parallelism need different mesh axes";
        if (Mesh[Cfg.Axis] % Cfg.Factor != 0)
            return $"cfg factor {Cfg.Factor} does not divide mesh axis {Cfg.Axis} of size {Mesh[Cfg.Axis]} (mesh {Mesh})";
        var split = Mesh.With(Cfg.Axis, Mesh[Cfg.Axis] / Cfg.Factor);
        var needed = SubmeshFor(Sp, Tp);
        if (split != needed)
        {
            int axis = split.Rows != needed.Rows ? 0 : 1;
            return $"cfg {Cfg.Factor} on axis {Cfg.Axis} splits the {Mesh} mesh into {Cfg.Factor} submesh(es) of {split}, " +
                   $"but sp {Sp.Factor} on axis {Sp.Axis} × tp {Tp.Factor} on axis {Tp.Axis} needs a {needed} submesh " +
                   $"(axis {axis} has {split[axis]} device(s), the factors on it ask for {needed[axis]})";
        }
        return null;
    }
}
