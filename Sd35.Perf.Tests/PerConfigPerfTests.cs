using Xunit.Abstractions;

namespace Sd35.Perf.Tests;

// One class per config id, so `dotnet test --filter "FullyQualifiedName~<id>&Category=Perf"` selects exactly one
// config's perf tests. The measured tests run the real sharded pipeline at CI scale; the modeled tests (also
// Category=Modeled) check the cost model's full-size prediction for the reference system against the reference's targets.
#pragma warning disable IDE1006 // class names carry config ids on purpose

[Trait("Category", "Perf")]
public class n150_cfg1_sp1_tp1_Perf(ITestOutputHelper output)
{
    [Fact]
    public void Measured_sections_within_targets() => PerfCheck.Measured("n150_cfg1_sp1_tp1", output);
}

[Trait("Category", "Perf")]
public class t3k_cfg2_sp2_tp2_Perf(ITestOutputHelper output)
{
    [Fact]
    public void Measured_sections_within_targets() => PerfCheck.Measured("t3k_cfg2_sp2_tp2", output);

    [Fact, Trait("Category", "Modeled")]
    public void Modeled_t3k_sections_within_reference_targets() => PerfCheck.Modeled("t3k_cfg2_sp2_tp2", "t3k", output);
}

[Trait("Category", "Perf")]
public class tg_cfg2_sp4_tp4_Perf(ITestOutputHelper output)
{
    [Fact]
    public void Measured_sections_within_targets() => PerfCheck.Measured("tg_cfg2_sp4_tp4", output);

    [Fact, Trait("Category", "Modeled")]
    public void Modeled_galaxy_sections_within_reference_targets() => PerfCheck.Modeled("tg_cfg2_sp4_tp4", "galaxy", output);
}
