using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using FluentAssertions;
using Sd35.Server.Jobs;

namespace Sd35.Server.Tests;

/// <summary>
/// The server under <c>mpirun -np 4</c> (one process per device of <c>qb_cfg1_sp2_tp2</c>; 8 on <c>t3k_cfg2_sp2_tp2</c>,
/// Slow): the lead serves HTTP and relays each job to the workers; the PNG is the in-process mesh server's to the byte; a cancelled job stops
/// every rank at the same step and the next job still matches; Ctrl-C ends every process cleanly. Skipped, with the
/// reason, where MPICH is missing. Bounds are generous for a loaded 2-core machine: they catch hangs, not slowness.
/// </summary>
public sealed class MpiServerTests
{
    static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);
    // The cancelled job is in another process, out of a StepHold's reach: it is long enough (a few ms per tiny step, more
    // under MPI) that polling sees it running by a wide margin on a loaded machine; it never runs to the end.
    const int LongSteps = 1000;          // the library's own limit
    static readonly object Body = new { prompt = "a lighthouse in a storm", negative_prompt = "blurry", steps = 2, guidance = 4.0, seed = 3, width = 48, height = 32 };

    static async Task<byte[]> Png(HttpClient client, object body)
    {
        var response = await client.PostAsJsonAsync("/v1/generate", body, Api.Json);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, System.Text.Encoding.UTF8.GetString(bytes));
        return bytes;
    }

    [MpiFact]
    public Task An_MPI_server_matches_the_in_process_server_cancels_on_every_rank_and_stops_cleanly() => Check("qb_cfg1_sp2_tp2", 4);

    /// <summary>The reference's 8-device box, with the cfg split over two submeshes: eight processes, so Slow.</summary>
    [MpiFact]
    [Trait("Category", "Slow")]
    public Task An_eight_process_MPI_server_on_t3k_cfg2_sp2_tp2_does_the_same() => Check("t3k_cfg2_sp2_tp2", 8);

    static async Task Check(string config, int processes)
    {
        byte[] expected;
        await using (var alone = await ServerProcess.StartAsync(null, Bound, "--parallel", config))
        {
            expected = await Png(alone.Client, Body);
            (await alone.InterruptAsync(TimeSpan.FromMinutes(1))).Should().Be(0, alone.Output);
        }

        await using var mpi = await ServerProcess.StartAsync(processes, Bound, "--parallel", config, "--max-steps", $"{LongSteps}");
        var info = await mpi.Client.GetFromJsonAsync<JsonElement>("/v1/info");
        info.GetProperty("device").GetString().Should().Contain($"over MPI, {processes} processes");
        info.GetProperty("models").GetString().Should().Be("resident");

        (await Png(mpi.Client, Body)).Should().Equal(expected, "the MPI server's PNG is the in-process mesh server's (the same command without mpirun), byte for byte");

        var running = await mpi.Client.SubmitOk(new { prompt = "long", steps = LongSteps, width = 32, height = 32 });
        await mpi.Client.WaitRunning(running, steps: 1);
        (await mpi.Client.DeleteAsync($"/v1/images/{running}")).StatusCode.Should().Be(HttpStatusCode.Accepted);
        var stopped = await mpi.Client.WaitFinished(running, Bound);
        stopped.Status.Should().Be(JobStatus.Cancelled, stopped.Error);
        stopped.Step.Should().BeLessThan(LongSteps);

        (await Png(mpi.Client, Body)).Should().Equal(expected, "after a cancelled job every rank is at the same point and the kept models are intact");

        var pids = mpi.RankPids();
        pids.Should().HaveCount(processes, mpi.Output);
        var exitCode = await mpi.InterruptAsync(TimeSpan.FromMinutes(1));
        exitCode.Should().Be(0, "Ctrl-C stops the lead, which tells the workers to exit, and every process ends cleanly:\n" + mpi.Output);
        pids.Where(Alive).Should().BeEmpty("no rank process outlives the job");
        mpi.Output.Should().NotContain("error", "a clean stop prints no error:\n" + mpi.Output);
    }

    static bool Alive(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
