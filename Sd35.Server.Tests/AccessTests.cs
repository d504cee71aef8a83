using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using FluentAssertions;
using Microsoft.Extensions.Configuration;
using Sd35.Server.Hosting;

namespace Sd35.Server.Tests;

/// <summary>
/// API keys (every /v1 route and /metrics need the key; 401 in OpenAI's shape; the GUI's session cookie), the refusal
/// to serve beyond loopback without one, request ids in headers and in every log line, and JSON logs.
/// </summary>
public sealed class AccessTests
{
    const string Key = "test-key-5f1d0c";

    static async Task<JsonElement> ErrorOf(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");

    [Fact]
    public async Task With_a_key_every_v1_route_and_metrics_need_it_and_the_gui_files_do_not()
    {
        await using var server = await LiveServer.StartAsync(null, "--api-key", Key);
        var anonymous = server.Client;
        foreach (var path in new[] { "/v1/health", "/v1/info", "/v1/models", "/metrics", "/v1/images/0123456789abcdef0123456789abcdef" })
        {
            var refused = await anonymous.GetAsync(path);
            refused.StatusCode.Should().Be(HttpStatusCode.Unauthorized, path);
            refused.Headers.WwwAuthenticate.ToString().Should().Be("Bearer");
            var error = await ErrorOf(refused);
            (error.GetProperty("type").GetString(), error.GetProperty("code").GetString()).Should().Be(("authentication_error", "missing_api_key"));
        }
        (await anonymous.PostAsJsonAsync("/v1/images/generations", new { prompt = "x" })).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await anonymous.GetAsync("/")).StatusCode.Should().Be(HttpStatusCode.OK, "the GUI's page holds nothing; it asks for the key");
        (await anonymous.GetAsync("/app.js")).StatusCode.Should().Be(HttpStatusCode.OK);

        using var wrong = new HttpClient { BaseAddress = server.BaseAddress };
        wrong.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key + "x");
        var badKey = await wrong.GetAsync("/v1/health");
        badKey.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await ErrorOf(badKey)).GetProperty("code").GetString().Should().Be("invalid_api_key");

        using var right = new HttpClient { BaseAddress = server.BaseAddress };
        right.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        foreach (var path in new[] { "/v1/health", "/v1/info", "/v1/models", "/metrics" })
            (await right.GetAsync(path)).StatusCode.Should().Be(HttpStatusCode.OK, path);

        // The GUI's one exchange: the key for an HttpOnly, SameSite=Strict session cookie, which then opens /v1.
        var cookies = new CookieContainer();
        using var browserLike = new HttpClient(new HttpClientHandler { CookieContainer = cookies }) { BaseAddress = server.BaseAddress };
        (await browserLike.PostAsync("/v1/session", null)).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        using (var exchange = new HttpRequestMessage(HttpMethod.Post, "/v1/session") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", Key) } })
        {
            var session = await browserLike.SendAsync(exchange);
            session.StatusCode.Should().Be(HttpStatusCode.NoContent);
            var setCookie = session.Headers.GetValues("Set-Cookie").Single();
            setCookie.Should().Contain("httponly").And.Contain("samesite=strict").And.NotContain(Key);
        }
        (await browserLike.GetAsync("/v1/info")).StatusCode.Should().Be(HttpStatusCode.OK, "the cookie stands for the key");

        // The SDK sends the key as OpenAI's does.
        var models = new OpenAI.OpenAIClient(new System.ClientModel.ApiKeyCredential(Key),
            new OpenAI.OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") }).GetOpenAIModelClient();
        (await models.GetModelsAsync()).Value.Should().ContainSingle();
        var withoutKey = new OpenAI.OpenAIClient(new System.ClientModel.ApiKeyCredential("wrong"),
            new OpenAI.OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") }).GetOpenAIModelClient();
        (await FluentActions.Awaiting(() => withoutKey.GetModelsAsync()).Should().ThrowAsync<System.ClientModel.ClientResultException>())
            .Which.Status.Should().Be(401);
    }

    [Fact]
    public void Keys_are_compared_whole_and_never_printed()
    {
        var key = new ApiKey(Key);
        key.Matches(Key).Should().BeTrue();
        key.Matches(Key[..^1]).Should().BeFalse();
        key.Matches(Key + " ").Should().BeFalse();
        key.Matches(null).Should().BeFalse();
        key.ToString().Should().NotContain(Key);
        new AccessOptions { Key = key }.ToString().Should().NotContain(Key);
    }

    [Theory]
    [InlineData("http://0.0.0.0:5080", false)]
    [InlineData("http://*:5080", false)]
    [InlineData("http://+:5080", false)]
    [InlineData("http://192.168.1.4:5080", false)]
    [InlineData("http://127.0.0.1:5080;http://[::]:5080", false)]
    [InlineData("http://127.0.0.1:5080", true)]
    [InlineData("http://localhost:5080", true)]
    [InlineData("http://[::1]:5080", true)]
    public void Listening_beyond_loopback_needs_a_key_or_allow_no_key(string urls, bool loopback)
    {
        var open = () => new AccessOptions().CheckExposure(urls);
        if (loopback) open.Should().NotThrow();
        else open.Should().Throw<ArgumentException>().WithMessage("*beyond loopback without an API key*--allow-no-key*");
        new AccessOptions { AllowNoKey = true }.Invoking(a => a.CheckExposure(urls)).Should().NotThrow();
        new AccessOptions { Key = new ApiKey(Key) }.Invoking(a => a.CheckExposure(urls)).Should().NotThrow();
    }

    [Fact]
    public void Kestrel_endpoints_in_the_configuration_count_too()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["urls"] = "http://127.0.0.1:5080",
            ["Kestrel:Endpoints:Public:Url"] = "http://0.0.0.0:8080",
        }).Build();
        new AccessOptions().Invoking(a => a.CheckExposure(configuration)).Should().Throw<ArgumentException>().WithMessage("*http://0.0.0.0:8080*");
    }

    [Fact]
    public async Task A_server_beyond_loopback_without_a_key_exits_2_with_one_line()
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "Sd35.Server.dll"), "--urls", "http://0.0.0.0:0"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        start.Environment.Remove(AccessOptions.KeyVariable);
        using var server = Process.Start(start)!;
        var stdout = server.StandardOutput.ReadToEndAsync();
        var stderr = await server.StandardError.ReadToEndAsync();
        await server.WaitForExitAsync();
        server.ExitCode.Should().Be(2, stderr + await stdout);
        stderr.TrimEnd().Split('\n').Should().ContainSingle().Which.Should().StartWith("error: --urls http://0.0.0.0:0 listens beyond loopback without an API key");
        (await stdout).Should().NotContain("Now listening");
    }

    [Fact]
    public async Task Json_logs_carry_the_request_id_of_the_response_header_in_every_request_line_and_never_the_key()
    {
        await using var server = await ServerProcess.StartAsync(null, TimeSpan.FromMinutes(2), "--log-format", "json", "--api-key", Key);
        server.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        var generated = await server.Client.PostAsJsonAsync("/v1/images/generations", new { prompt = "logged", size = "32x32" });
        generated.StatusCode.Should().Be(HttpStatusCode.OK);
        var requestId = generated.Headers.GetValues(RequestIds.Header).Single();
        using (var wrongKey = new HttpRequestMessage(HttpMethod.Get, "/v1/health") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", "not-" + Key) } })
            (await server.Client.SendAsync(wrongKey)).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        // The request's last line ("Request finished") is written as the response completes; wait for it.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!server.Output.Contains("Request finished HTTP/1.1 GET") && DateTime.UtcNow < deadline) await Task.Delay(50);

        var output = server.Output;
        output.Should().NotContain(Key[5..], "the key is never logged");
        var entries = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => JsonDocument.Parse(line).RootElement).ToList();   // every line is one JSON object
        string? RequestIdOf(JsonElement entry) =>
            entry.TryGetProperty("Scopes", out var scopes)
                ? scopes.EnumerateArray().Where(s => s.ValueKind == JsonValueKind.Object && s.TryGetProperty("RequestId", out _))
                    .Select(s => s.GetProperty("RequestId").GetString()).FirstOrDefault()
                : null;
        var ofRequests = entries.Where(e => e.GetProperty("Category").GetString()!.StartsWith("Microsoft.AspNetCore.Hosting.Diagnostics")).ToList();
        ofRequests.Should().HaveCountGreaterThanOrEqualTo(4, "a start and a finish line per request");
        ofRequests.Select(RequestIdOf).Should().NotContainNulls("every request line carries its request id");
        ofRequests.Where(e => e.GetProperty("Message").GetString()!.Contains("/v1/images/generations")).Select(RequestIdOf)
            .Should().OnlyContain(id => id == requestId).And.HaveCount(2);
        var jobLine = entries.Single(e => e.GetProperty("Message").GetString()!.Contains("succeeded in"));
        RequestIdOf(jobLine).Should().Be(requestId, "the job's line, written on the generation thread, carries the id of the request that made it");
    }
}

/// <summary>The access options on the command line and in the environment (bad values: <see cref="ServerOptionsTests"/>).</summary>
public sealed class AccessOptionsTests
{
    static AccessOptions Parse(params string[] args) =>
        AccessOptions.From(new ConfigurationBuilder().AddCommandLine(ServerOptions.NormalizeArguments(args)).Build());

    [Fact]
    public void The_key_comes_from_the_option_or_the_environment_and_flags_need_no_value()
    {
        var before = Environment.GetEnvironmentVariable(AccessOptions.KeyVariable);
        try
        {
            Environment.SetEnvironmentVariable(AccessOptions.KeyVariable, null);
            Parse().Key.Should().BeNull();
            Parse("--api-key", "from-option").Key!.Matches("from-option").Should().BeTrue();
            Environment.SetEnvironmentVariable(AccessOptions.KeyVariable, "from-environment");
            Parse().Key!.Matches("from-environment").Should().BeTrue();
            Parse("--api-key", "from-option").Key!.Matches("from-option").Should().BeTrue("the command line wins");
        }
        finally
        {
            Environment.SetEnvironmentVariable(AccessOptions.KeyVariable, before);
        }
        Parse("--allow-no-key", "--log-format", "json").Should().Match<AccessOptions>(a => a.AllowNoKey && a.LogFormat == LogFormat.Json);
        Parse("--max-event-streams", "5").MaxEventStreams.Should().Be(5);
    }
}
