namespace Sd35.Tests.TestSupport;

/// <summary>
/// Peak resident memory of this process over a region of code, from Linux's <c>VmHWM</c>. Writing 5 to
/// <c>/proc/self/clear_refs</c> resets the high-water mark to the current resident size, so the peak of one
/// region is measured without a separate process.
/// </summary>
public static class PeakMemory
{
    public static bool Available => OperatingSystem.IsLinux() && File.Exists("/proc/self/clear_refs");

    /// <summary>Runs <paramref name="action"/>; returns the resident size before it and the peak during it, in bytes.</summary>
    public static (long Before, long Peak) Measure(Action action)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        File.WriteAllText("/proc/self/clear_refs", "5");
        long before = Read("VmRSS");
        action();
        return (before, Read("VmHWM"));
    }

    static long Read(string field)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024; // the kernel reports kB
    }
}
