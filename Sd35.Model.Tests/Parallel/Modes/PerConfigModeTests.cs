// One class per named parallel config, named by its id, as PerConfigTests.cs: `dotnet test --filter <id>` selects them too.
#pragma warning disable IDE1006 // class names are config ids on purpose
using Xunit.Abstractions;

namespace Sd35.Tests.Parallel.Modes;

public sealed class n150_cfg1_sp1_tp1(ITestOutputHelper log) : PipelineModeTests("n150_cfg1_sp1_tp1", log);
public sealed class n300_cfg1_sp1_tp2(ITestOutputHelper log) : PipelineModeTests("n300_cfg1_sp1_tp2", log);
public sealed class n300_cfg1_sp2_tp1(ITestOutputHelper log) : PipelineModeTests("n300_cfg1_sp2_tp1", log);
public sealed class qb_cfg1_sp2_tp2(ITestOutputHelper log) : PipelineModeTests("qb_cfg1_sp2_tp2", log);
public sealed class qb_cfg1_sp1_tp4(ITestOutputHelper log) : PipelineModeTests("qb_cfg1_sp1_tp4", log);
public sealed class t3k_cfg2_sp2_tp2(ITestOutputHelper log) : PipelineModeTests("t3k_cfg2_sp2_tp2", log);
public sealed class t3k_cfg2_sp1_tp4(ITestOutputHelper log) : PipelineModeTests("t3k_cfg2_sp1_tp4", log);
public sealed class t3k_cfg1_sp2_tp4(ITestOutputHelper log) : PipelineModeTests("t3k_cfg1_sp2_tp4", log);
public sealed class tg_cfg2_sp4_tp4(ITestOutputHelper log) : PipelineModeTests("tg_cfg2_sp4_tp4", log);
