using System.Diagnostics;
using System.Text.Json;

namespace Sd35.Mesh.Tracing;

/// <summary>
/// Writes captured step programs as Chrome / Perfetto trace-event JSON (opens in ui.perfetto.dev or chrome://tracing):
/// one process per step kind, one track (thread) per device holding a span for the whole step and, inside it, a span
/// per compute op (kind, section, input and output shapes, dtype, FLOPs and bytes as arguments) and per blocking
/// collective (group, op, shape, dtype, bytes sent and received). Asynchronous collectives (ring exchanges, which
/// overlap the ops between their post and their wait) are async spans beside the device's track. Gaps between spans
/// are host work the kernels do not report (views, reshapes, small element-wise ops).
/// </summary>
public static class TraceExport
{
    public static void WriteChromeTrace(string path, IReadOnlyList<RankStepProgram> programs, string title)
    {
        if (programs.Count == 0) throw new InvalidOperationException("no step was captured; run a traced step first");
        long origin = programs.Min(p => p.StartTimestamp);
        double Micros(long timestamp) => (timestamp - origin) * 1e6 / Stopwatch.Frequency;
        double Duration(long start, long end) => Math.Max(0, Micros(end) - Micros(start));
        var events = new List<object>();
        int pid = 0, asyncId = 0;
        foreach (var kind in programs.Select(p => p.StepKind).Distinct())
        {
            events.Add(new { name = "process_name", ph = "M", pid, tid = 0, args = new { name = $"{title}: {kind} step" } });
            foreach (var program in programs.Where(p => p.StepKind == kind).OrderBy(p => p.Rank))
            {
                int tid = program.Rank;
                events.Add(new { name = "thread_name", ph = "M", pid, tid, args = new { name = $"device {program.Rank}" } });
                events.Add(new
                {
                    name = $"{kind} step", cat = "step", ph = "X", pid, tid, ts = Micros(program.StartTimestamp),
                    dur = Duration(program.StartTimestamp, program.EndTimestamp), args = StepArgs(program),
                });
                foreach (var e in program.Events)
                {
                    switch (e)
                    {
                        case TracedOp op:
                            events.Add(new
                            {
                                name = op.Name, cat = "op", ph = "X", pid, tid, ts = Micros(op.StartTimestamp), dur = Duration(op.StartTimestamp, op.EndTimestamp),
                                args = new
                                {
                                    kind = op.Kind.ToString(), section = op.Section, inputs = string.Join(" ", op.InputShapes), output = op.OutputShape,
                                    dtype = op.DType, flops = op.Flops, bytes_read = op.BytesRead, bytes_written = op.BytesWritten,
                                    start = op.StartObserved ? "observed" : "end of the previous event",
                                },
                            });
                            break;
                        case TracedCollective { Async: false } c:
                            events.Add(new
                            {
                                name = $"{c.Call.Group} {c.Call.Op}", cat = "collective", ph = "X", pid, tid, ts = Micros(c.StartTimestamp),
                                dur = Duration(c.StartTimestamp, c.EndTimestamp), args = CollectiveArgs(c),
                            });
                            break;
                        case TracedCollective c:
                            // Posted, then waited on later with ops in between: an async span, which may overlap its neighbours.
                            int id = asyncId++;
                            events.Add(new { name = $"{c.Call.Group} {c.Call.Op}", cat = "collective", ph = "b", id, pid, tid, ts = Micros(c.StartTimestamp), args = CollectiveArgs(c) });
                            events.Add(new { name = $"{c.Call.Group} {c.Call.Op}", cat = "collective", ph = "e", id, pid, tid, ts = Micros(c.EndTimestamp) });
                            break;
                    }
                }
            }
            pid++;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, JsonSerializer.Serialize(new { traceEvents = events, displayTimeUnit = "ms" }));
    }

    static object CollectiveArgs(TracedCollective c) => new
    {
        shape = c.Call.ShapeText, dtype = c.Call.DType, bytes_sent = c.BytesSent, bytes_received = c.BytesReceived, async = c.Async,
    };

    /// <summary>The step's totals: how many ops and collectives, and how much of the step the ops' spans cover.</summary>
    static object StepArgs(RankStepProgram program)
    {
        static double Ms(long ticks) => ticks * 1e3 / Stopwatch.Frequency;
        return new
        {
            ops = program.Ops.Count,
            collectives = program.Collectives.Count,
            step_ms = Ms(program.EndTimestamp - program.StartTimestamp),
            op_ms = Ms(program.Ops.Sum(o => o.EndTimestamp - o.StartTimestamp)),
            blocking_collective_ms = Ms(program.Collectives.Where(c => !c.Async).Sum(c => c.EndTimestamp - c.StartTimestamp)),
            gflop = program.Ops.Sum(o => o.Flops) / 1e9,
        };
    }
}
