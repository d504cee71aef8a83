using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using Sd35.Server.Jobs;
using SkiaSharp;

namespace Sd35.Server.Tests;

/// <summary>The HTTP API in process: every endpoint, validation answers, the queue limit and cancellation.</summary>
public sealed class ApiTests(ServerFactory factory) : IClassFixture<ServerFactory>
{
    readonly HttpClient _client = factory.CreateClient();

    [Fact]
    public async Task Health_and_info_describe_the_loaded_model()
    {
        var health = await _client.GetFromJsonAsync<JsonElement>("/v1/health");
        health.GetProperty("status").GetString().Should().Be("ok");
        health.GetProperty("queue_length").GetInt32().Should().Be(2);

        var info = await _client.GetFromJsonAsync<JsonElement>("/v1/info");
        info.GetProperty("model").GetString().Should().Contain("tiny reference");
        info.GetProperty("config").GetString().Should().Be("single device");
        info.GetProperty("default_size").GetInt32().Should().Be(64);
        info.GetProperty("models").GetString().Should().Be("resident", "a server keeps its models loaded unless told --models staged");
        info.GetProperty("memory").GetString().Should().StartWith("resident");
        info.GetProperty("versions").GetProperty("torchsharp").GetString().Should().NotBeNullOrEmpty();
        // No --compute-dtype, fp32 weights: full precision, nothing measured (a measurement only chooses for reduced weights).
        var precision = info.GetProperty("precision");
        precision.GetProperty("compute").GetString().Should().Be("fp32");
        (!precision.TryGetProperty("measured", out var measured) || measured.ValueKind == JsonValueKind.Null).Should().BeTrue();
        var components = info.GetProperty("components").EnumerateArray().ToList();
        components.Select(c => c.GetProperty("component").GetString()).Should().Equal("transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3");
        components.Should().AllSatisfy(c =>
        {
            c.GetProperty("format").GetString().Should().Be("diffusers folder");
            c.GetProperty("quantization").GetString().Should().Be("none");
            c.GetProperty("bytes").GetInt64().Should().BePositive();
        });
    }

    [Fact]
    public async Task OpenApi_description_lists_every_endpoint()
    {
        var document = await _client.GetFromJsonAsync<JsonElement>("/openapi/v1.json");
        var paths = document.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        paths.Should().Contain(["/v1/images", "/v1/images/{id}", "/v1/images/{id}/png", "/v1/images/{id}/events", "/v1/generate", "/v1/health", "/v1/info"]);
        document.GetProperty("paths").GetProperty("/v1/images/{id}").TryGetProperty("delete", out _).Should().BeTrue();
    }

    [Fact]
    public async Task Gui_is_served_at_the_root()
    {
        var html = await _client.GetStringAsync("/");
        html.Should().Contain("id=\"generate-form\"").And.Contain("app.js");
        (await _client.GetAsync("/app.js")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_job_reports_progress_as_events_and_its_png_equals_the_synchronous_answer()
    {
        var body = new { prompt = "a red fox", steps = 2, seed = 3, guidance = 4.5 };
        var response = await _client.Submit(body);
        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        var id = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
        response.Headers.Location!.ToString().Should().Be($"/v1/images/{id}");

        var events = await ReadEvents(id);
        events.Select(e => e.Name).Last().Should().Be("succeeded");
        events.Where(e => e.Name == "progress").Select(e => e.Job.Step).Should().BeInAscendingOrder().And.Contain(1);

        var job = await _client.Status(id);
        job.Status.Should().Be(JobStatus.Succeeded);
        job.Progress.Should().Be(1);
        job.Parameters.Seed.Should().Be(3);
        job.Parameters.Width.Should().Be(64);
        job.Timings!.StepSeconds.Should().HaveCount(2);
        job.Timings.TotalSeconds.Should().BePositive();
        job.Timings.EncodingSeconds.Should().BePositive();
        job.Timings.DecodingSeconds.Should().BePositive();

        var png = await _client.GetByteArrayAsync($"/v1/images/{id}/png");
        using (var bitmap = SKBitmap.Decode(png)) bitmap.Width.Should().Be(64);
        var direct = await _client.PostAsJsonAsync("/v1/generate", body, Api.Json);
        direct.Content.Headers.ContentType!.MediaType.Should().Be("image/png");
        (await direct.Content.ReadAsByteArrayAsync()).Should().Equal(png, "the same request gives the same image");
        Directory.EnumerateFiles(factory.OutputFolder).Select(Path.GetFileName).Should().Contain($"{id}.png")
            .And.OnlyContain(name => name!.EndsWith(".png") && name.Length == 36, "the server names its files by job id and leaves no temporaries");
    }

    public static TheoryData<string, string, string> BadBodies => new()
    {
        // The library's rules (GenerationRequest.Validate): the message names the value; its wording is the demo's.
        { """{"prompt":"x","steps":0}""", "steps", "0" },
        { """{"prompt":"x","width":30}""", "width", "30" },
        { """{"prompt":"x","guidance":-1}""", "guidance", "-1" },
        { """{"prompt":"x","height":256}""", "height", "at most 192 pixels" },
        // The server's own limits.
        { """{"prompt":"x","height":4096}""", "height", "at most 2048" },
        { """{"prompt":"x","steps":1000}""", "steps", "at most 200" },
        { """{"negative_prompt":"x"}""", "prompt", "required" },
        { """{"prompt":"x","guidence":2}""", "guidence", "unknown field" },
        { """{"prompt":"x","seed":"abc"}""", "seed", "wrong type" },
        { """{"prompt":"x","steps":"2"}""", "steps", "wrong type" },
        { """{"prompt":"x","skip_layer_guidance":{"layers":[7]}}""", "skip_layer_guidance", "0..2" },
        { $$"""{"prompt":"{{new string('a', 301)}}"}""", "prompt", "at most 300" },
    };

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task A_bad_request_is_a_400_naming_the_field(string json, string field, string message)
    {
        foreach (var path in new[] { "/v1/images", "/v1/generate" })
        {
            var response = await _client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
            response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
            var error = await response.Content.ReadFromJsonAsync<JsonElement>();
            error.GetProperty("field").GetString().Should().Be(field);
            error.GetProperty("error").GetString().Should().Contain(message);
        }
    }

    [Fact]
    public async Task Bodies_that_are_not_json_or_too_large_are_refused()
    {
        (await _client.PostAsync("/v1/images", new StringContent("prompt=x", Encoding.UTF8, "text/plain"))).StatusCode
            .Should().Be(HttpStatusCode.UnsupportedMediaType);
        (await _client.PostAsync("/v1/images", new StringContent("{\"prompt\":", Encoding.UTF8, "application/json"))).StatusCode
            .Should().Be(HttpStatusCode.BadRequest);
        var huge = JsonSerializer.Serialize(new { prompt = new string('a', 5000) });
        var response = await _client.PostAsync("/v1/images", new StringContent(huge, Encoding.UTF8, "application/json"));
        response.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
        (await response.Content.ReadAsStringAsync()).Should().Contain("4096 bytes");
    }

    [Theory]
    [InlineData("0123456789abcdef0123456789abcdef")]
    [InlineData("..%2F..%2Fetc%2Fpasswd")]
    [InlineData("%2E%2E")]
    public async Task Unknown_ids_are_404_and_never_become_paths(string id)
    {
        foreach (var path in new[] { $"/v1/images/{id}", $"/v1/images/{id}/png", $"/v1/images/{id}/events" })
            (await _client.GetAsync(path)).StatusCode.Should().Be(HttpStatusCode.NotFound, path);
        (await _client.DeleteAsync($"/v1/images/{id}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_full_queue_answers_429_with_retry_after_and_cancel_stops_queued_and_running_jobs()
    {
        using var hold = new StepHold(factory.Queue, "long");
        var running = await _client.SubmitOk(new { prompt = "long", steps = 200, width = 32, height = 32 });
        await hold.WaitHeld(running);
        var held = await _client.GetFromJsonAsync<JsonElement>($"/v1/images/{running}");
        held.GetProperty("stage").GetString().Should().Be("denoising", "a running job names its stage (GenerationStage, snake_case on the wire)");
        (await _client.Status(running)).Stage.Should().Be(Sd35.Pipeline.GenerationStage.Denoising);
        var queued = new[] { await _client.SubmitOk(new { prompt = "q1" }), await _client.SubmitOk(new { prompt = "q2" }) };
        (await _client.Status(queued[1])).QueuePosition.Should().Be(1);
        (await _client.GetAsync($"/v1/images/{queued[0]}/png")).StatusCode.Should().Be(HttpStatusCode.Conflict);

        var refused = await _client.Submit(new { prompt = "one too many" });
        refused.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        int.Parse(refused.Headers.GetValues("Retry-After").Single()).Should().BeGreaterThanOrEqualTo(1);
        (await refused.Content.ReadAsStringAsync()).Should().Contain("queue is full");

        foreach (var id in queued) (await _client.DeleteAsync($"/v1/images/{id}")).StatusCode.Should().Be(HttpStatusCode.Accepted);
        foreach (var id in queued) (await _client.Status(id)).Status.Should().Be(JobStatus.Cancelled, "a queued job is cancelled at once");

        (await _client.DeleteAsync($"/v1/images/{running}")).StatusCode.Should().Be(HttpStatusCode.Accepted);
        var stopped = await _client.WaitFinished(running, TimeSpan.FromMinutes(1));
        stopped.Status.Should().Be(JobStatus.Cancelled);
        stopped.Step.Should().BeLessThan(200, "a running job stops at its next step boundary");
        stopped.Stage.Should().BeNull("only a running job has a stage");
        (await _client.GetAsync($"/v1/images/{running}/png")).StatusCode.Should().Be(HttpStatusCode.Conflict);
        (await _client.DeleteAsync($"/v1/images/{running}")).StatusCode.Should().Be(HttpStatusCode.Conflict, "it already finished");
        File.Exists(Path.Combine(factory.OutputFolder, $"{running}.png")).Should().BeFalse();
        (await _client.GetFromJsonAsync<JsonElement>("/v1/health")).GetProperty("busy").GetBoolean().Should().BeFalse();
    }

    [Fact]
    public async Task A_client_that_leaves_a_synchronous_generate_cancels_its_job()
    {
        GenerationJob? job = null;
        void Watch(GenerationJob j, int _) { if (j.Request.Prompt == "abandoned") job = j; }
        factory.Queue.StepFinished += Watch;   // added before the hold, so it sees each step before the hold waits
        using var hold = new StepHold(factory.Queue, "abandoned");
        using var leave = new CancellationTokenSource();
        var request = _client.PostAsJsonAsync("/v1/generate", new { prompt = "abandoned", steps = 200, width = 32, height = 32 }, Api.Json, leave.Token);
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        // Leave once the job has finished a step (the hold keeps it there): leaving while it still loads or encodes
        // would cancel it before any step, and the step watch below would see nothing.
        while (job is null && DateTime.UtcNow < deadline) await Task.Delay(20);
        job.Should().NotBeNull("the job ran a step within a minute");
        factory.Queue.Busy.Should().BeTrue();
        leave.Cancel();
        await FluentActions.Awaiting(() => request).Should().ThrowAsync<OperationCanceledException>();
        while (factory.Queue.Busy && DateTime.UtcNow < deadline) await Task.Delay(50);
        factory.Queue.StepFinished -= Watch;
        factory.Queue.Busy.Should().BeFalse("the job stopped at a step boundary instead of running 200 steps for nobody");
        // Idle alone would also follow a job that failed or ran to its end: the job itself must say it was cancelled.
        var snapshot = job!.Snapshot();
        snapshot.Status.Should().Be(JobStatus.Cancelled);
        snapshot.Step.Should().BeLessThan(200);
        job.PngPath.Should().BeNull("a cancelled job writes no image");
    }

    [Fact]
    public async Task Submitting_is_the_route_v1_images_with_or_without_a_trailing_slash()
    {
        foreach (var path in new[] { "/v1/images", "/v1/images/" })
            (await _client.PostAsJsonAsync(path, new { prompt = "x", steps = 100000 }, Api.Json)).StatusCode.Should().Be(HttpStatusCode.BadRequest, path);
        var document = await _client.GetFromJsonAsync<JsonElement>("/openapi/v1.json");
        document.GetProperty("paths").TryGetProperty("/v1/images", out var submit).Should().BeTrue("metrics and the OpenAPI description name the route as documented");
        submit.TryGetProperty("post", out _).Should().BeTrue();
    }

    sealed record ServerEvent(string Name, JobSnapshot Job);

    async Task<List<ServerEvent>> ReadEvents(string id)
    {
        using var response = await _client.GetAsync($"/v1/images/{id}/events", HttpCompletionOption.ResponseHeadersRead);
        response.Content.Headers.ContentType!.MediaType.Should().Be("text/event-stream");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = new List<ServerEvent>();
        string? name = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ")) name = line["event: ".Length..];
            else if (line.StartsWith("data: ")) events.Add(new ServerEvent(name!, JsonSerializer.Deserialize<JobSnapshot>(line["data: ".Length..], Api.Json)!));
        }
        return events;
    }
}
