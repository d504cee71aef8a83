using Sd35.Tensors;

namespace Sd35.Hosting;

/// <summary>
/// What a process sets up once, before its first tensor: the libtorch it runs on (<see cref="LibTorchRuntime.Select"/>,
/// always: <c>SD35_LIBTORCH_DIR</c> must be honoured by every program), the CPU runtime's switches
/// (<see cref="CpuRuntime.Configure"/>) and NNPACK off (<see cref="Nnpack.Disable"/>). Each happens once per
/// process; later pipelines find it done.
/// </summary>
public sealed record ProcessSetup
{
    /// <summary>null: leave the CPU runtime as the process has it (a test host compares against runs made without it).</summary>
    public CpuRuntimeOptions? CpuRuntime { get; init; }
    public bool DisableNnpack { get; init; }

    /// <summary>
    /// What the demo and the server do: oneMKL's AVX-512 kernels on non-Intel CPUs (see Sd35.Perf/README.md), with
    /// the memory switches off, since the staged pipeline wants freed weights returned to the system between stages.
    /// </summary>
    public static ProcessSetup Program { get; } = new()
    {
        CpuRuntime = new CpuRuntimeOptions { HugePageAllocations = false, RetainFreedMemory = false },
        DisableNnpack = true,
    };

    /// <summary>Only the libtorch choice: the process (a test host, a benchmark that set itself up) is left as it is.</summary>
    public static ProcessSetup HostAsIs { get; } = new();

    /// <returns>what was done, one line per switch</returns>
    public string Apply()
    {
        string libtorch;
        try { libtorch = LibTorchRuntime.Select(); }
        catch (DirectoryNotFoundException e) { throw new Sd35.Errors.RuntimeSetupException(e.Message, e); }
        var lines = new List<string> { libtorch };
        if (CpuRuntime is not null) lines.Add(Sd35.Tensors.CpuRuntime.Configure(CpuRuntime));
        if (DisableNnpack) Nnpack.Disable();
        return string.Join(Environment.NewLine, lines);
    }
}
