using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using Sd35.Server.Jobs;

namespace Sd35.Server.Tests;

/// <summary>
/// The OpenAI-compatible API's answers on the wire, in process: OpenAI's error shape with the native status codes
/// (400 naming the field in <c>param</c>, 413, 415, 429 with Retry-After), the model list, and the edit form's checks.
/// </summary>
public sealed class OpenAiApiTests(ServerFactory factory) : IClassFixture<ServerFactory>
{
    readonly HttpClient _client = factory.CreateClient();

    static async Task<JsonElement> ErrorOf(HttpResponseMessage response)
    {
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        var error = body.GetProperty("error");
        // OpenAI's four keys, always present (null where nothing applies).
        error.EnumerateObject().Select(p => p.Name).Should().BeEquivalentTo(["message", "type", "param", "code"]);
        return error;
    }

    public static TheoryData<string, string, string> BadGenerations => new()
    {
        { """{"prompt":"x","size":"30x64"}""", "size", "multiple of 8" },
        { """{"prompt":"x","size":"4096x4096"}""", "size", "at most 2048" },
        { """{"prompt":"x","size":"big"}""", "size", "WIDTHxHEIGHT" },
        { """{"prompt":"x","n":11}""", "n", "1..10" },
        { """{"prompt":"x","n":0}""", "n", "1..10" },
        { """{"prompt":"x","n":3}""", "n", "at most 2 jobs" },
        { """{"prompt":"x","response_format":"png"}""", "response_format", "'url' or 'b64_json'" },
        { """{"prompt":"x","model":"dall-e-3"}""", "model", "sd35-tiny-reference" },
        { """{"prompt":"x","quality":"hd"}""", "quality", "unknown field" },
        { """{"prompt":"x","strength":0.5}""", "strength", "unknown field" },   // an input image is an edit's, not a generation's
        { """{"prompt":"x","steps":1000}""", "steps", "at most 200" },
        { """{"prompt":"x","seed":"abc"}""", "seed", "wrong type" },
        { """{"n":1}""", "prompt", "required" },
    };

    [Theory]
    [MemberData(nameof(BadGenerations))]
    public async Task A_bad_generation_is_a_400_in_openais_shape_naming_the_field(string json, string param, string message)
    {
        var response = await _client.PostAsync("/v1/images/generations", new StringContent(json, Encoding.UTF8, "application/json"));
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        var error = await ErrorOf(response);
        error.GetProperty("param").GetString().Should().Be(param);
        error.GetProperty("type").GetString().Should().Be("invalid_request_error");
        error.GetProperty("message").GetString().Should().Contain(message);
        if (param == "model") error.GetProperty("code").GetString().Should().Be("model_not_found", "OpenAI's code for a model it does not serve");
    }

    [Fact]
    public async Task Too_large_and_not_json_keep_their_status_codes()
    {
        var huge = JsonSerializer.Serialize(new { prompt = new string('a', 5000) });
        var response = await _client.PostAsync("/v1/images/generations", new StringContent(huge, Encoding.UTF8, "application/json"));
        response.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
        (await ErrorOf(response)).GetProperty("code").GetString().Should().Be("request_too_large");
        (await _client.PostAsync("/v1/images/generations", new StringContent("prompt=x", Encoding.UTF8, "text/plain"))).StatusCode
            .Should().Be(HttpStatusCode.UnsupportedMediaType);
    }

    [Fact]
    public async Task A_full_queue_is_a_429_with_retry_after_and_n_images_are_queued_all_or_none()
    {
        using var hold = new StepHold(factory.Queue, "long");
        var running = await _client.SubmitOk(new { prompt = "long", steps = 200, width = 32, height = 32 });
        await hold.WaitHeld(running);
        var queued = await _client.SubmitOk(new { prompt = "waits" });

        // One place is left in a queue of 2: two images do not fit, and none of them is queued.
        var refused = await _client.PostAsJsonAsync("/v1/images/generations", new { prompt = "two", n = 2 });
        refused.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        int.Parse(refused.Headers.GetValues("Retry-After").Single()).Should().BeGreaterThanOrEqualTo(1);
        var error = await ErrorOf(refused);
        (error.GetProperty("type").GetString(), error.GetProperty("code").GetString()).Should().Be(("requests", "rate_limit_exceeded"), "OpenAI's own 429");
        error.GetProperty("message").GetString().Should().Contain("cannot take 2 more jobs");
        factory.Queue.Waiting.Should().Be(1, "a refused request queues nothing");

        foreach (var id in new[] { queued, running }) await _client.DeleteAsync($"/v1/images/{id}");
        await _client.WaitFinished(running, TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task A_client_that_leaves_a_generation_cancels_all_its_jobs()
    {
        const string prompt = "abandoned openai";
        var finished = new System.Collections.Concurrent.ConcurrentDictionary<string, JobStatus>();
        void OnFinished(GenerationJob job)
        {
            if (job.Request.Prompt == prompt) finished[job.Id] = job.Status;
        }
        factory.Queue.JobFinished += OnFinished;
        try
        {
            using var hold = new StepHold(factory.Queue, prompt);
            using var leave = new CancellationTokenSource();
            var request = _client.PostAsJsonAsync("/v1/images/generations", new { prompt, n = 2, size = "32x32", steps = 200 }, leave.Token);
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
            while (!(factory.Queue.Busy && factory.Queue.Waiting == 1) && DateTime.UtcNow < deadline) await Task.Delay(20);
            (factory.Queue.Busy, factory.Queue.Waiting).Should().Be((true, 1), "one image runs, the other waits");

            leave.Cancel();
            await FluentActions.Awaiting(() => request).Should().ThrowAsync<OperationCanceledException>();
            while (finished.Count < 2 && DateTime.UtcNow < deadline) await Task.Delay(20);
            finished.Values.Should().Equal([JobStatus.Cancelled, JobStatus.Cancelled], "nobody reads either image: neither may run on");
        }
        finally
        {
            factory.Queue.JobFinished -= OnFinished;
        }
    }

    [Fact]
    public async Task Models_lists_the_loaded_model_and_an_unknown_one_is_404()
    {
        var models = await _client.GetFromJsonAsync<JsonElement>("/v1/models");
        models.GetProperty("object").GetString().Should().Be("list");
        var entry = models.GetProperty("data").EnumerateArray().Single();
        (entry.GetProperty("id").GetString(), entry.GetProperty("object").GetString()).Should().Be(("sd35-tiny-reference", "model"));
        var unknown = await _client.GetAsync("/v1/models/dall-e-3");
        unknown.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await ErrorOf(unknown)).GetProperty("code").GetString().Should().Be("model_not_found");
    }

    [Fact]
    public async Task Generations_answer_images_and_the_openapi_description_lists_the_openai_routes()
    {
        var response = await _client.PostAsJsonAsync("/v1/images/generations", new { prompt = "a fox", size = "32x32", response_format = "b64_json", seed = 5 });
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        body.GetProperty("created").GetInt64().Should().BePositive();
        var png = Convert.FromBase64String(body.GetProperty("data")[0].GetProperty("b64_json").GetString()!);
        var native = await _client.PostAsJsonAsync("/v1/generate", new { prompt = "a fox", width = 32, height = 32, seed = 5 }, Api.Json);
        png.Should().Equal(await native.Content.ReadAsByteArrayAsync(), "the extra fields mean what they mean in the native API");

        var document = await _client.GetFromJsonAsync<JsonElement>("/openapi/v1.json");
        document.GetProperty("paths").EnumerateObject().Select(p => p.Name).Should().Contain(["/v1/images/generations", "/v1/images/edits", "/v1/models"]);
    }

    static MultipartFormDataContent Edit(byte[]? image, byte[]? mask = null, params (string Name, string Value)[] fields)
    {
        var form = new MultipartFormDataContent();
        if (image is not null) form.Add(new ByteArrayContent(image) { Headers = { ContentType = new MediaTypeHeaderValue("image/png") } }, "image", "image.png");
        if (mask is not null) form.Add(new ByteArrayContent(mask) { Headers = { ContentType = new MediaTypeHeaderValue("image/png") } }, "mask", "mask.png");
        foreach (var (name, value) in fields.Prepend(("prompt", "a hat"))) form.Add(new StringContent(value), name);
        return form;
    }

    public static TheoryData<string, string> BadEdits => new()
    {
        { "no image", "image" },
        { "not an image", "image" },
        { "mask of another size", "mask" },
        { "opaque mask", "mask" },
        { "strength 0", "strength" },
        { "strength 1.5", "strength" },
        { "size unlike the image", "size" },
        { "image not a multiple of 8", "image" },
        { "n 11", "n" },
        { "steps not a number", "steps" },
        { "unknown field", "style" },
    };

    [Theory]
    [MemberData(nameof(BadEdits))]
    public async Task A_bad_edit_is_a_400_naming_the_field_before_anything_runs(string what, string param)
    {
        var png = OpenAiSdkTests.Png(64, 64, transparentFrom: null);
        using var form = what switch
        {
            "no image" => Edit(null),
            "not an image" => Edit(Encoding.UTF8.GetBytes("not a png")),
            "mask of another size" => Edit(png, OpenAiSdkTests.Png(32, 32, transparentFrom: 16)),
            "opaque mask" => Edit(png, png),
            "strength 0" => Edit(png, null, ("strength", "0")),
            "strength 1.5" => Edit(png, null, ("strength", "1.5")),
            "size unlike the image" => Edit(png, null, ("size", "32x32")),
            "image not a multiple of 8" => Edit(OpenAiSdkTests.Png(60, 64, transparentFrom: null)),
            "n 11" => Edit(png, null, ("n", "11")),
            "steps not a number" => Edit(png, null, ("steps", "many")),
            "unknown field" => Edit(png, null, ("style", "vivid")),
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };
        var response = await _client.PostAsync("/v1/images/edits", form);
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, what);
        (await ErrorOf(response)).GetProperty("param").GetString().Should().Be(param, what);
    }

    [Fact]
    public async Task A_valid_edit_runs_image_to_image_and_an_image_with_transparency_is_its_own_mask()
    {
        var opaque = await _client.PostAsync("/v1/images/edits", Edit(OpenAiSdkTests.Png(64, 64, transparentFrom: null), null, ("strength", "0.5"), ("n", "2")));
        opaque.StatusCode.Should().Be(HttpStatusCode.OK, await opaque.Content.ReadAsStringAsync());
        var data = JsonDocument.Parse(await opaque.Content.ReadAsStringAsync()).RootElement.GetProperty("data");
        data.GetArrayLength().Should().Be(2);

        var transparent = await _client.PostAsync("/v1/images/edits", Edit(OpenAiSdkTests.Png(64, 64, transparentFrom: 40)));
        transparent.StatusCode.Should().Be(HttpStatusCode.OK, await transparent.Content.ReadAsStringAsync());
        var url = JsonDocument.Parse(await transparent.Content.ReadAsStringAsync()).RootElement.GetProperty("data")[0].GetProperty("url").GetString()!;
        var job = await _client.Status(url.Split('/')[^2]);
        job.Parameters.Mode.Should().Be("inpainting", "the image's alpha-0 pixels are the mask");
        job.Parameters.Mask.Should().Be(new Jobs.MaskRegion(64 * 24, 0, 40, 64, 24));
    }

    [Fact]
    public async Task Edits_keep_their_own_upload_limit_and_need_multipart()
    {
        var response = await _client.PostAsync("/v1/images/edits", Edit(new byte[9 << 20]));
        response.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
        (await ErrorOf(response)).GetProperty("message").GetString().Should().Contain("--max-upload-bytes");
        (await _client.PostAsJsonAsync("/v1/images/edits", new { prompt = "x" })).StatusCode.Should().Be(HttpStatusCode.UnsupportedMediaType);
    }
}
