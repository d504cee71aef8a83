using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using FluentAssertions;
using Sd35.Server.Jobs;
using Xunit.Abstractions;

namespace Sd35.Server.Tests;

/// <summary>
/// Many clients at once on a loopback socket: the queue admits what it can hold and refuses the rest with 429,
/// every accepted job ends succeeded or cancelled, each client gets the image of its own seed, memory stays flat.
/// Bounded in time: jobs still waiting after the submission window are cancelled by their clients. Every fifth client
/// speaks OpenAI's images API instead (<c>POST /v1/images/generations</c>, URL answers) against the same queue.
/// </summary>
public sealed class LoadTests(ITestOutputHelper output)
{
    const int Clients = 50, RequestsPerClient = 3, QueueLength = 3, OpenAiEvery = 5;
    static readonly long[] Seeds = [0, 1];
    static readonly TimeSpan SubmissionWindow = TimeSpan.FromSeconds(10);
    // Resident-memory growth over the load, measured 2026-12-06 on the 2-core AMD EPYC VM (23 GiB), this test alone,
    // while four other agents kept the load average at 17-23: five runs before the OpenAI clients joined (0, 2, 3, 9 and
    // — with a 40 s window — 12 jobs succeeded): peak − before 15, 25, 30, 36 and 33 MiB, after − before 15, 21, 27, 29
    // and 26 MiB; three runs with them (3, 3, 7 succeeded): peak 22, 18, 32 MiB, after 15, 17, 30 MiB. It levels off
    // with the jobs done. On a quiet machine far more jobs finish in the window (9.6-13.2 images/s) and the allocator keeps
    // more: measured 2026-12-06 13:36, this test alone, load 4-6: peak − before 46, 51, 54, 57, 161 MiB (after − before
    // up to 143 MiB) with this session's code, and 71 and 140 MiB with the code as it was at ce2ed03 — the same growth,
    // allocator retention, not a leak per job. Bounds: 1.2× the largest. A leak of a job's worth of memory is still
    // caught by far (the server-leaks-per-job mutation: 665 MiB).
    const long PeakGrowthBound = 192L << 20, GrowthAfterBound = 192L << 20;

    enum Outcome { Succeeded, Cancelled, Refused }

    [Fact]
    public async Task Fifty_clients_get_their_own_images_or_a_429_and_nothing_is_lost()
    {
        await using var server = await LiveServer.StartAsync(null, "--queue-length", QueueLength.ToString());
        object Body(long seed) => new { prompt = "load test", steps = 2, seed, width = 32, height = 32 };

        // The image each seed must give, made one at a time before the load (also warms the process up).
        var expected = new Dictionary<long, byte[]>();
        foreach (var seed in Seeds)
        {
            var response = await server.Client.PostAsJsonAsync("/v1/generate", Body(seed), Api.Json);
            expected[seed] = await response.Content.ReadAsByteArrayAsync();
        }
        expected.Values.Distinct(new BytesComparer()).Should().HaveCount(Seeds.Length, "distinct seeds give distinct images, so a mix-up would show");
        long memoryBefore = ResidentBytes();

        var outcomes = new ConcurrentBag<(int Client, long Seed, Outcome Outcome, string? Id)>();
        var retryAfter = new ConcurrentBag<int>();
        var openAiImages = new ConcurrentBag<Uri>();
        long peakMemory = memoryBefore;
        var clock = Stopwatch.StartNew();
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peakMemory = Math.Max(peakMemory, ResidentBytes());
                await Task.Delay(100);
            }
        });

        // One request of an OpenAI client; bounded: a request still waiting after the window is abandoned (its job cancelled).
        async Task<(Outcome, string?)> OpenAiRequest(HttpClient http, long seed)
        {
            using var giveUp = new CancellationTokenSource(SubmissionWindow + TimeSpan.FromSeconds(60) - clock.Elapsed);
            HttpResponseMessage response;
            try
            {
                response = await http.PostAsJsonAsync("/v1/images/generations",
                    new { prompt = "load test", steps = 2, seed, size = "32x32", response_format = "url" }, giveUp.Token);
            }
            catch (OperationCanceledException)
            {
                return (Outcome.Cancelled, null);
            }
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                retryAfter.Add(int.Parse(response.Headers.GetValues("Retry-After").Single()));
                return (Outcome.Refused, null);
            }
            response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
            var url = new Uri((await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("data")[0].GetProperty("url").GetString()!);
            url.Authority.Should().Be(server.BaseAddress.Authority);
            (await http.GetByteArrayAsync(url)).Should().Equal(expected[seed], $"an OpenAI client asked for seed {seed}");
            openAiImages.Add(url);
            return (Outcome.Succeeded, url.Segments[^2].TrimEnd('/'));
        }

        async Task Client(int client)
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
            for (int r = 0; r < RequestsPerClient; r++)
            {
                long seed = Seeds[(client + r) % Seeds.Length];
                if (client % OpenAiEvery == 1)
                {
                    // An OpenAI client: the same queue behind POST /v1/images/generations, waiting for its image's URL.
                    var (outcome, imageId) = await OpenAiRequest(http, seed);
                    outcomes.Add((client, seed, outcome, imageId));
                    if (outcome == Outcome.Refused) await Task.Delay(Random.Shared.Next(1000, 3000));
                    if (clock.Elapsed > SubmissionWindow) break;
                    continue;
                }
                var response = await http.Submit(Body(seed));
                if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    retryAfter.Add(int.Parse(response.Headers.GetValues("Retry-After").Single()));
                    outcomes.Add((client, seed, Outcome.Refused, null));
                    // Spread the retries over the window, so the queue refills as jobs finish.
                    await Task.Delay(Random.Shared.Next(1000, 3000));
                    if (clock.Elapsed > SubmissionWindow) break;
                    continue;
                }
                response.StatusCode.Should().Be(HttpStatusCode.Accepted);
                var id = (await response.Content.ReadFromJsonAsync<JobAccepted>(Api.Json))!.Id;
                // A few clients change their mind at once; every client gives up on a job still waiting after the window.
                bool cancelNow = client % 10 == 0 && r == 0;
                JobSnapshot job;
                while (true)
                {
                    job = await http.Status(id);
                    if (job.Status is JobStatus.Succeeded or JobStatus.Failed or JobStatus.Cancelled) break;
                    if (cancelNow || (clock.Elapsed > SubmissionWindow && job.Status == JobStatus.Queued))
                    {
                        var cancel = await http.DeleteAsync($"/v1/images/{id}");
                        cancel.StatusCode.Should().BeOneOf(HttpStatusCode.Accepted, HttpStatusCode.Conflict);
                        cancelNow = false;
                    }
                    await Task.Delay(100);
                }
                job.Status.Should().NotBe(JobStatus.Failed, job.Error);
                if (job.Status == JobStatus.Succeeded)
                {
                    job.Parameters.Seed.Should().Be(seed);
                    (await http.GetByteArrayAsync($"/v1/images/{id}/png")).Should().Equal(expected[seed], $"client {client} asked for seed {seed}");
                }
                outcomes.Add((client, seed, job.Status == JobStatus.Succeeded ? Outcome.Succeeded : Outcome.Cancelled, id));
                if (clock.Elapsed > SubmissionWindow) break;
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Clients).Select(c => Task.Run(() => Client(c))));
        var elapsed = clock.Elapsed;
        sampling.Cancel();
        await sampler;
        GC.Collect();
        long memoryAfter = ResidentBytes();

        var all = outcomes.ToList();
        int succeeded = all.Count(o => o.Outcome == Outcome.Succeeded), cancelled = all.Count(o => o.Outcome == Outcome.Cancelled), refused = all.Count(o => o.Outcome == Outcome.Refused);
        output.WriteLine($"{Clients} clients, {all.Count} requests in {elapsed.TotalSeconds:F1} s: {succeeded} succeeded, {cancelled} cancelled, {refused} refused (429, Retry-After {retryAfter.DefaultIfEmpty().Min()}..{retryAfter.DefaultIfEmpty().Max()} s)");
        output.WriteLine($"throughput {succeeded / elapsed.TotalSeconds:F2} images/s; resident memory {memoryBefore >> 20} MiB before, peak {peakMemory >> 20} MiB, {memoryAfter >> 20} MiB after");

        output.WriteLine($"{openAiImages.Count} of the images went to OpenAI clients (every {OpenAiEvery}th client)");
        refused.Should().BePositive("50 clients at once overflow a queue of 3");
        // Each OpenAI answer was checked where it came (its seed's image, or 429 with Retry-After); under heavy
        // contention the window may hold only a couple of images, so no share of them is required.
        all.Count(o => o.Client % OpenAiEvery == 1).Should().BePositive("the OpenAI clients made requests");
        succeeded.Should().BePositive();
        retryAfter.Should().OnlyContain(s => s >= 1);
        all.Where(o => o.Id is not null).Select(o => o.Id).Should().OnlyHaveUniqueItems();
        var health = await server.Client.GetFromJsonAsync<HealthBody>("/v1/health", Api.Json);
        (health!.Busy, health.Waiting).Should().Be((false, 0), "every accepted job has ended");
        var files = Directory.EnumerateFiles(server.OutputFolder).Select(Path.GetFileName).ToList();
        var succeededFiles = all.Where(o => o.Outcome == Outcome.Succeeded).Select(o => $"{o.Id}.png").ToList();
        files.Should().Contain(succeededFiles).And.HaveCount(succeededFiles.Count + Seeds.Length,
            "one PNG per succeeded job (and per reference image), no temporaries, nothing for cancelled jobs");
        (peakMemory - memoryBefore).Should().BeLessThan(PeakGrowthBound, "the peak under load stays near the measured one: jobs are bounded by the queue");
        (memoryAfter - memoryBefore).Should().BeLessThan(GrowthAfterBound, "memory stays flat: images live on disk, jobs are bounded");
    }

    sealed record JobAccepted(string Id);
    sealed record HealthBody(string Status, bool Busy, int Waiting, int QueueLength);

    static long ResidentBytes()
    {
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64;
    }

    sealed class BytesComparer : IEqualityComparer<byte[]>
    {
        public bool Equals(byte[]? a, byte[]? b) => a.AsSpan().SequenceEqual(b);
        public int GetHashCode(byte[] bytes) => bytes.Length;
    }
}
