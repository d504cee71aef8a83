using FluentAssertions;
using Sd35.Mesh;

namespace Sd35.Tests.Mesh;

public class ParallelConfigTests
{
    /// <summary>The registry as the issue specifies it: id, mesh, ((cfg), (sp), (tp)), new-style alias.</summary>
    public static TheoryData<string, int, int, (int, int), (int, int), (int, int), string?> Expected => new()
    {
        { "n150_cfg1_sp1_tp1", 1, 1, (1, 0), (1, 0), (1, 1), null },
        { "n300_cfg1_sp1_tp2", 1, 2, (1, 0), (1, 0), (2, 1), null },
        { "n300_cfg1_sp2_tp1", 2, 1, (1, 0), (2, 0), (1, 1), null },
        { "qb_cfg1_sp2_tp2", 2, 2, (1, 0), (2, 0), (2, 1), null },
        { "qb_cfg1_sp1_tp4", 1, 4, (1, 0), (1, 0), (4, 1), "1x4cfg0sp0tp1" },
        { "t3k_cfg2_sp2_tp2", 2, 4, (2, 1), (2, 0), (2, 1), "2x4cfg1sp0tp1" },
        { "t3k_cfg2_sp1_tp4", 2, 4, (2, 0), (1, 0), (4, 1), "2x4cfg0sp0tp1" },
        { "t3k_cfg1_sp2_tp4", 2, 4, (1, 0), (2, 0), (4, 1), null },
        { "tg_cfg2_sp4_tp4", 4, 8, (2, 1), (4, 0), (4, 1), "4x8cfg1sp0tp1" },
    };

    [Theory]
    [MemberData(nameof(Expected))]
    public void Every_named_config_parses_to_its_mesh_and_tuple(string id, int rows, int cols, (int, int) cfg, (int, int) sp, (int, int) tp, string? alias)
    {
        var config = ParallelConfig.Parse(id);
        config.Mesh.Should().Be(new MeshShape(rows, cols));
        config.Cfg.Should().Be((ParallelFactor)cfg);
        config.Sp.Should().Be((ParallelFactor)sp);
        config.Tp.Should().Be((ParallelFactor)tp);
        config.Id.Should().Be(id);
        ParallelConfig.Parse(id.ToUpperInvariant()).Should().Be(config);
        if (alias is not null) ParallelConfig.Parse(alias).Should().Be(config);
        NamedParallelConfigs.Get(id).Alias.Should().Be(alias);
    }

    [Fact]
    public void The_registry_is_exactly_the_expected_list()
    {
        NamedParallelConfigs.All.Select(n => n.Id).Should().BeEquivalentTo(Expected.Select(row => (string)row[0]));
        NamedParallelConfigs.Systems.Should().BeEquivalentTo("n150", "n300", "qb", "t3k", "tg");
    }

    [Fact]
    public void No_id_or_alias_is_contained_in_another_so_filter_selection_is_unambiguous()
    {
        var names = NamedParallelConfigs.All.SelectMany(n => new[] { n.Id, n.Alias }).OfType<string>().ToArray();
        foreach (var a in names)
            names.Where(b => b != a && b.Contains(a, StringComparison.OrdinalIgnoreCase)).Should().BeEmpty($"'{a}' selects only itself");
    }

    [Fact]
    public void Ring_and_ulysses_factors_follow_sp_and_tp()
    {
        var config = ParallelConfig.Parse("tg_cfg2_sp4_tp4");
        config.Rp.Should().Be(4);
        config.Up.Should().Be(4);
        config.Submesh.Should().Be(new MeshShape(4, 4));
        config.DeviceCount.Should().Be(32);
        ParallelConfig.Parse("t3k_cfg2_sp1_tp4").Submesh.Should().Be(new MeshShape(1, 4));
    }

    [Theory]
    [InlineData("tg_cfg2_sp4_tp4", 38, 40, 10, true)]
    [InlineData("t3k_cfg2_sp2_tp2", 38, 38, 19, false)]
    [InlineData("n150_cfg1_sp1_tp1", 38, 38, 38, false)]
    public void Heads_are_padded_up_to_a_multiple_of_tp(string id, int heads, int padded, int local, bool needsPadding)
    {
        var config = ParallelConfig.Parse(id);
        config.PaddedHeads(heads).Should().Be(padded);
        config.LocalHeads(heads).Should().Be(local);
        config.NeedsHeadPadding(heads).Should().Be(needsPadding);
    }

    [Fact]
    public void The_model_validator_accepts_sd35_large_on_every_named_config()
    {
        foreach (var named in NamedParallelConfigs.All)
            named.Config.Invoking(c => c.ValidateFor(spatialTokens: 4096, heads: 38, hiddenDim: 2432)).Should().NotThrow(named.Id);
    }

    [Fact]
    public void The_model_validator_lists_every_problem()
    {
        var config = ParallelConfig.Parse("t3k_cfg1_sp2_tp4");
        config.Invoking(c => c.ValidateFor(spatialTokens: 4095, heads: 38, hiddenDim: 2430)).Should().Throw<ArgumentException>()
            .WithMessage("parallel config t3k_cfg1_sp2_tp4 does not fit the model: sp 2 does not divide the 4095 spatial tokens (1 left over); " +
                         "tp 4 does not divide the hidden dim 2430 (2 left over)");
        config.Invoking(c => c.ValidateFor(4096, 0, 2432)).Should().Throw<ArgumentException>().WithMessage("*attention needs at least one head, got 0");
    }

    public static TheoryData<int, int, (int, int), (int, int), (int, int), string> Invalid => new()
    {
        { 2, 4, (1, 0), (0, 0), (2, 1), "sp factor must be at least 1, got 0" },
        { 2, 4, (1, 0), (2, 0), (2, 2), "tp axis must be 0 (rows) or 1 (columns), got 2" },
        { 2, 4, (1, -1), (2, 0), (2, 1), "cfg axis must be 0 (rows) or 1 (columns), got -1" },
        { 2, 4, (4, 1), (2, 0), (1, 1), "cfg factor must be 1 or 2 (classifier-free guidance has two branches), got 4" },
        { 4, 1, (1, 0), (2, 0), (2, 0), "sp 2 and tp 2 are both on axis 0; sequence and tensor parallelism need different mesh axes" },
        { 1, 4, (2, 0), (1, 0), (2, 1), "cfg factor 2 does not divide mesh axis 0 of size 1 (mesh 1x4)" },
        { 2, 4, (2, 1), (4, 0), (2, 1), "cfg 2 on axis 1 splits the 2x4 mesh into 2 submesh(es) of 2x2, but sp 4 on axis 0 × tp 2 on axis 1 needs a 4x2 submesh (axis 0 has 2 device(s), the factors on it ask for 4)" },
        { 2, 4, (1, 0), (2, 0), (2, 1), "cfg 1 on axis 0 splits the 2x4 mesh into 1 submesh(es) of 2x4, but sp 2 on axis 0 × tp 2 on axis 1 needs a 2x2 submesh (axis 1 has 4 device(s), the factors on it ask for 2)" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Invalid_configs_say_what_is_wrong(int rows, int cols, (int, int) cfg, (int, int) sp, (int, int) tp, string message)
    {
        var act = () => new ParallelConfig(new MeshShape(rows, cols), cfg, sp, tp);
        act.Should().Throw<ArgumentException>().WithMessage($"invalid parallel config {rows}x{cols} cfg{(ParallelFactor)cfg} sp{(ParallelFactor)sp} tp{(ParallelFactor)tp}: {message}");
    }

    [Fact]
    public void Sp_and_tp_may_use_either_axis_and_a_factor_of_one_may_share_an_axis()
    {
        new ParallelConfig(new MeshShape(2, 4), (2, 1), (2, 1), (2, 0)).Submesh.Should().Be(new MeshShape(2, 2));
        new ParallelConfig(new MeshShape(1, 2), (1, 0), (1, 1), (2, 1)).Submesh.Should().Be(new MeshShape(1, 2));
    }

    [Theory]
    [InlineData("t3k_cfg4_sp2_tp1", "'t3k_cfg4_sp2_tp1': no such config on t3k; t3k configs: t3k_cfg2_sp2_tp2, t3k_cfg2_sp1_tp4, t3k_cfg1_sp2_tp4")]
    [InlineData("abc_cfg1_sp1_tp1", "'abc_cfg1_sp1_tp1': unknown system 'abc'; known systems: n150, n300, qb, t3k, tg")]
    [InlineData("3x3cfg0sp0tp1", "'3x3cfg0sp0tp1': no config is registered under this reference id; known: 1x4cfg0sp0tp1 (= qb_cfg1_sp1_tp4), 2x4cfg1sp0tp1 (= t3k_cfg2_sp2_tp2), 2x4cfg0sp0tp1 (= t3k_cfg2_sp1_tp4), 4x8cfg1sp0tp1 (= tg_cfg2_sp4_tp4)")]
    [InlineData("t3k", "'t3k' is not a parallel-config id: expected <system>_cfg<c>_sp<s>_tp<t> (e.g. t3k_cfg2_sp2_tp2) or the reference's <rows>x<cols>cfg<axis>sp<axis>tp<axis> (e.g. 2x4cfg1sp0tp1)")]
    [InlineData("", "'' is not a parallel-config id*")]
    public void Unknown_or_malformed_ids_are_refused_clearly(string id, string message)
    {
        FluentActions.Invoking(() => ParallelConfig.Parse(id)).Should().Throw<FormatException>().WithMessage(message);
    }

    [Fact]
    public void An_unnamed_config_has_no_id_but_equals_a_named_one_with_the_same_tuple()
    {
        var same = new ParallelConfig(new MeshShape(2, 4), (2, 1), (2, 0), (2, 1));
        same.Should().Be(ParallelConfig.Parse("t3k_cfg2_sp2_tp2"));
        same.Id.Should().Be("t3k_cfg2_sp2_tp2");
        new ParallelConfig(new MeshShape(1, 8), (1, 0), (1, 0), (8, 1)).Id.Should().BeNull();
    }
}
