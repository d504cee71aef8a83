namespace Sd35.Mesh;

/// <summary>
/// Test-only failure injection, for checking that a failing rank ends the whole run promptly on every backend:
/// <c>SD35_FAULT_RANK=&lt;device id&gt; SD35_FAULT_AT=&lt;point&gt;</c> (points: <c>step:&lt;i&gt;</c>, before denoising step i)
/// makes that rank throw <see cref="InjectedFaultException"/> there; with <c>SD35_FAULT_KIND=kill</c> the rank's
/// process kills itself with SIGKILL instead (meaningful with one process per rank, under MPI).
/// </summary>
public static class FaultInjection
{
    static readonly int? TargetRank = int.TryParse(Environment.GetEnvironmentVariable("SD35_FAULT_RANK"), out int r) ? r : null;
    static readonly string? TargetPoint = Environment.GetEnvironmentVariable("SD35_FAULT_AT");
    static readonly bool KillsProcess = Environment.GetEnvironmentVariable("SD35_FAULT_KIND") == "kill";

    public static void At(string point, int device)
    {
        if (TargetRank != device || TargetPoint != point) return;
        if (KillsProcess) System.Diagnostics.Process.GetCurrentProcess().Kill();
        throw new InjectedFaultException($"fault injected on rank {device} at {point} (SD35_FAULT_RANK={TargetRank}, SD35_FAULT_AT={TargetPoint})");
    }
}

/// <summary>The failure <see cref="FaultInjection"/> raises.</summary>
public sealed class InjectedFaultException(string message) : Exception(message);
