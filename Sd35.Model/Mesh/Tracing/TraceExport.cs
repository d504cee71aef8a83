using System.Diagnostics;
using System.Text.Json;

namespace Sd35.Mesh.Tracing;

/// <summary>
/// Writes captured step programs as Chrome / Perfetto trace-event JSON (opens in ui.perfetto.dev or chrome://tracing):
/// one track (thread) per device, a span per collective (group, op, shape, dtype, bytes as arguments) and a "compute"
/// span for the time between collectives (the rank's own ops: TorchSharp offers no per-op hook, so they are not split).
/// </summary>
public static class TraceExport
{
    public static void WriteChromeTrace(string path, IReadOnlyList<RankStepProgram> programs, string title)
    {
        if (programs.Count == 0) throw new InvalidOperationException("no step was captured; run a traced step first");
        long origin = programs.Min(p => p.StartTimestamp);
        double Micros(long timestamp) => (timestamp - origin) * 1e6 / Stopwatch.Frequency;
        var events = new List<object>();
        int pid = 0;
        foreach (var kind in programs.Select(p => p.StepKind).Distinct())
        {
            events.Add(new { name = "process_name", ph = "M", pid, tid = 0, args = new { name = $"{title}: {kind} step" } });
            foreach (var program in programs.Where(p => p.StepKind == kind).OrderBy(p => p.Rank))
            {
                int tid = program.Rank;
                events.Add(new { name = "thread_name", ph = "M", pid, tid, args = new { name = $"device {program.Rank}" } });
                long cursor = program.StartTimestamp;
                foreach (var c in program.Collectives)
                {
                    if (c.StartTimestamp > cursor)
                        events.Add(new { name = "compute", cat = "compute", ph = "X", pid, tid, ts = Micros(cursor), dur = Micros(c.StartTimestamp) - Micros(cursor) });
                    events.Add(new
                    {
                        name = $"{c.Call.Group} {c.Call.Op}", cat = "collective", ph = "X", pid, tid, ts = Micros(c.StartTimestamp),
                        dur = Micros(c.EndTimestamp) - Micros(c.StartTimestamp),
                        args = new { shape = c.Call.ShapeText, dtype = c.Call.DType, bytes_sent = c.BytesSent, bytes_received = c.BytesReceived },
                    });
                    cursor = c.EndTimestamp;
                }
                if (program.EndTimestamp > cursor)
                    events.Add(new { name = "compute", cat = "compute", ph = "X", pid, tid, ts = Micros(cursor), dur = Micros(program.EndTimestamp) - Micros(cursor) });
            }
            pid++;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, JsonSerializer.Serialize(new { traceEvents = events, displayTimeUnit = "ms" }));
    }
}
