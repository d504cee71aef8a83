// One class per named parallel config, named by its id, so that `dotnet test --filter <id>` selects exactly
// that config's tests (the filter matches the fully qualified name). Ids never contain one another.
#pragma warning disable IDE1006 // class names are config ids on purpose
namespace Sd35.Tests.Parallel;

public sealed class n150_cfg1_sp1_tp1() : ParallelModelTests("n150_cfg1_sp1_tp1");
public sealed class n300_cfg1_sp1_tp2() : ParallelModelTests("n300_cfg1_sp1_tp2");
public sealed class n300_cfg1_sp2_tp1() : ParallelModelTests("n300_cfg1_sp2_tp1");
public sealed class qb_cfg1_sp2_tp2() : ParallelModelTests("qb_cfg1_sp2_tp2");
public sealed class qb_cfg1_sp1_tp4() : ParallelModelTests("qb_cfg1_sp1_tp4");
public sealed class t3k_cfg2_sp2_tp2() : ParallelModelTests("t3k_cfg2_sp2_tp2");
public sealed class t3k_cfg2_sp1_tp4() : ParallelModelTests("t3k_cfg2_sp1_tp4");
public sealed class t3k_cfg1_sp2_tp4() : ParallelModelTests("t3k_cfg1_sp2_tp4");
public sealed class tg_cfg2_sp4_tp4() : ParallelModelTests("tg_cfg2_sp4_tp4");
