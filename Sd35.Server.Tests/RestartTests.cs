using FluentAssertions;
using Sd35.Server.Jobs;

namespace Sd35.Server.Tests;

/// <summary>Stopping the server with a job running and jobs queued: each ends cleanly, no file is left half-written.</summary>
public sealed class RestartTests
{
    [Fact]
    public async Task Stopping_with_jobs_queued_fails_them_cleanly_and_leaves_no_partial_files()
    {
        var folder = Directory.CreateTempSubdirectory("sd35-server-restart-").FullName;
        try
        {
            string running;
            string[] queued;
            GenerationQueue queue;
            await using (var server = await LiveServer.StartAsync(folder))
            {
                queue = server.Queue;
                using var hold = new StepHold(queue, "long");
                running = await server.Client.SubmitOk(new { prompt = "long", steps = 200, width = 32, height = 32 });
                await hold.WaitHeld(running);
                queued = [await server.Client.SubmitOk(new { prompt = "a" }), await server.Client.SubmitOk(new { prompt = "b" })];
                await server.StopAsync();
            }

            var stopped = queue.Find(running)!.Snapshot();
            stopped.Status.Should().Be(JobStatus.Cancelled);
            stopped.Error.Should().Contain("server stopped");
            stopped.Step.Should().BeLessThan(200);
            foreach (var id in queued)
            {
                var job = queue.Find(id)!.Snapshot();
                job.Status.Should().Be(JobStatus.Failed);
                job.Error.Should().Be("the server stopped before this job ran");
            }
            Directory.EnumerateFileSystemEntries(folder).Should().BeEmpty("no job finished, so no image and no temporary file exists");

            // A leftover temporary from a crash is removed by the next start; the server comes back healthy.
            var leftover = Path.Combine(folder, $".{running}.png.{Guid.NewGuid():N}.tmp");
            await File.WriteAllBytesAsync(leftover, [1, 2, 3]);
            var foreign = Path.Combine(folder, "notes.txt");
            await File.WriteAllTextAsync(foreign, "not the server's");
            await using (var again = await LiveServer.StartAsync(folder))
            {
                (await again.Client.GetStringAsync("/v1/health")).Should().Contain("\"ok\"");
                File.Exists(leftover).Should().BeFalse();
                File.Exists(foreign).Should().BeTrue("the server deletes only files it names itself");
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
