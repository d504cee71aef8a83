using System.Diagnostics;

namespace Sd35.Perf.Harness;

/// <summary>
/// How many cores <i>other</i> processes kept busy while this one ran: the machine's busy share from /proc/stat minus
/// this process's CPU time. A same-process probe (GEMM, dispatch) cancels a steady load, but not another torch job
/// starting mid-run: two processes each running 2 OpenMP threads on 2 cores slow each other's lock-step kernels far
/// more than the probe sees (measured here: the 1×1 config's denoising read 2.5× its quiet GEMM-GFLOP while another
/// test run was busy). So a timed run that shared the machine is measured again once it is quiet
/// (<see cref="PerfSession"/>). Unlike a busy-core count of this process, this does not mistake a regression that
/// leaves cores idle (a single-threaded kernel) for a busy machine. Off Linux it reads 0 (no information).
/// </summary>
public static class OtherWork
{
    /// <summary>Other processes' average busy cores above which a timed run counts as shared.</summary>
    public const double SharedAbove = 0.3;

    public readonly record struct Mark(long Busy, long Total, TimeSpan OwnCpu, long Timestamp);

    public static Mark Now()
    {
        var (busy, total) = Jiffies();
        return new Mark(busy, total, Process.GetCurrentProcess().TotalProcessorTime, Stopwatch.GetTimestamp());
    }

    /// <summary>Other processes' average busy cores since <paramref name="start"/>.</summary>
    public static double CoresSince(Mark start)
    {
        var end = Now();
        long total = end.Total - start.Total;
        double wall = Stopwatch.GetElapsedTime(start.Timestamp, end.Timestamp).TotalSeconds;
        if (total <= 0 || wall <= 0) return 0;
        double machineBusyCores = (double)(end.Busy - start.Busy) / total * Environment.ProcessorCount;
        double ownCores = (end.OwnCpu - start.OwnCpu).TotalSeconds / wall;
        return Math.Max(0, machineBusyCores - ownCores);
    }

    /// <summary>Waits (up to <paramref name="limit"/>) until other processes stay below <see cref="SharedAbove"/> for a second; returns their last reading.</summary>
    public static double WaitForQuiet(TimeSpan limit)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var mark = Now();
            Thread.Sleep(1000);
            double others = CoresSince(mark);
            if (others <= SharedAbove || deadline.Elapsed >= limit) return others;
        }
    }

    /// <summary>The first line of /proc/stat: all cores' busy and total jiffies.</summary>
    static (long Busy, long Total) Jiffies()
    {
        if (!File.Exists("/proc/stat")) return (0, 0);
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(long.Parse).ToArray();
        // user nice system idle iowait irq softirq steal (guest time is inside user already)
        long idle = fields[3] + (fields.Length > 4 ? fields[4] : 0);
        long total = fields.Take(Math.Min(8, fields.Length)).Sum();
        return (total - idle, total);
    }
}
