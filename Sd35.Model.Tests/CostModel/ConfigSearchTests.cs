using FluentAssertions;
using Sd35.CostModeling;
using Sd35.Mesh;

namespace Sd35.Tests.CostModel;

public sealed class ConfigSearchTests
{
    [Fact]
    public void Valid_configs_of_the_8_chip_box_include_the_registered_ones()
    {
        var found = ConfigSearch.ValidConfigs(new MeshShape(2, 4), Workload.Sd35Large);
        foreach (var id in new[] { "t3k_cfg2_sp2_tp2", "t3k_cfg2_sp1_tp4", "t3k_cfg1_sp2_tp4" })
            found.Should().Contain(ParallelConfig.Parse(id));
        found.Should().OnlyHaveUniqueItems().And.OnlyContain(c => c.Mesh == new MeshShape(2, 4));
    }

    [Fact]
    public void Galaxy_configs_whose_encoders_cannot_split_their_heads_are_left_out()
    {
        var found = ConfigSearch.ValidConfigs(new MeshShape(4, 8), Workload.Sd35Large);
        found.Should().Contain(ParallelConfig.Parse("tg_cfg2_sp4_tp4"));
        // cfg 1 keeps the whole 4×8 submesh: the encoders would run tp 8 over CLIP-L's 12 heads.
        found.Should().NotContain(c => c.Cfg.Factor == 1 && c.Submesh.Cols == 8);
    }

    [Fact]
    public void Configs_parse_in_full_form_and_round_trip()
    {
        var config = ConfigSpec.Parse("4x8:cfg2@1,sp4@0,tp4@1");
        config.Should().Be(ParallelConfig.Parse("tg_cfg2_sp4_tp4"));
        ConfigSpec.Format(config).Should().Be("4x8:cfg2@1,sp4@0,tp4@1");
        var act = () => ConfigSpec.Parse("4x8:cfg2");
        act.Should().Throw<FormatException>().WithMessage("*<rows>x<cols>:cfg*");
    }
}
