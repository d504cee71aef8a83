namespace Sd35.Diagnostics;

/// <summary>
/// This process's resident memory from Linux's <c>/proc/self/status</c>: <c>VmRSS</c> now and <c>VmHWM</c>, the peak.
/// Writing 5 to <c>/proc/self/clear_refs</c> resets the peak to the current resident size, so the peak of one
/// region (a pipeline stage, one component's loading) is measured without a separate process.
/// </summary>
public static class ProcessMemory
{
    public static bool Available => OperatingSystem.IsLinux() && File.Exists("/proc/self/clear_refs");

    public static long ResidentBytes => Read("VmRSS");

    public static long PeakResidentBytes => Read("VmHWM");

    /// <summary>Starts a new peak at the current resident size.</summary>
    public static void ResetPeak()
    {
        if (Available) File.WriteAllText("/proc/self/clear_refs", "5");
    }

    static long Read(string field)
    {
        if (!OperatingSystem.IsLinux()) return 0;
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return line is null ? 0 : ParseStatusLine(line);
    }

    /// <summary>
    /// Bytes from a <c>/proc/self/status</c> line such as <c>"VmHWM:\t  264818 kB"</c>. The kernel pads the number with
    /// spaces after a tab only up to 8 digits: from 10 GB on it reads <c>"VmHWM:\t11523456 kB"</c>, with no space
    /// before the number, so the line is split on any whitespace.
    /// </summary>
    public static long ParseStatusLine(string line) =>
        long.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
}
