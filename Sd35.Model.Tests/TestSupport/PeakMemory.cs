using Sd35.Diagnostics;

namespace Sd35.Tests.TestSupport;

/// <summary>Peak resident memory of this process over a region of code (<see cref="ProcessMemory"/>).</summary>
public static class PeakMemory
{
    public static bool Available => ProcessMemory.Available;

    /// <summary>Runs <paramref name="action"/>; returns the resident size before it and the peak during it, in bytes.</summary>
    public static (long Before, long Peak) Measure(Action action)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        ProcessMemory.ResetPeak();
        long before = ProcessMemory.ResidentBytes;
        action();
        return (before, ProcessMemory.PeakResidentBytes);
    }
}
