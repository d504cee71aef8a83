using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using FluentAssertions;
using Xunit.Abstractions;

namespace Sd35.Server.Tests;

/// <summary>
/// <c>GET /metrics</c>: the counters move as requests are made, and the text passes Prometheus' own checker
/// (<c>promtool check metrics</c>, from Debian's <c>prometheus</c> package, which <c>.ci/run</c> installs).
/// </summary>
public sealed class MetricsTests(ServerFactory factory, ITestOutputHelper output) : IClassFixture<ServerFactory>
{
    readonly HttpClient _client = factory.CreateClient();

    /// <summary>The sum of the samples of <paramref name="name"/> whose labels include every one of <paramref name="labels"/>.</summary>
    static double Value(string metrics, string name, params string[] labels) =>
        metrics.Split('\n')
            .Where(line => !line.StartsWith('#') && (line.StartsWith(name + "{") || line.StartsWith(name + " ")))
            .Where(line => labels.All(label => line.Contains(label)))
            .Sum(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));

    async Task<string> Scrape()
    {
        var response = await _client.GetAsync("/metrics");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Content.Headers.ContentType!.MediaType.Should().Be("text/plain");
        return await response.Content.ReadAsStringAsync();
    }

    [Fact]
    public async Task Counters_and_histograms_move_as_requests_are_made()
    {
        var before = await Scrape();
        (await _client.PostAsJsonAsync("/v1/images/generations", new { prompt = "counted", size = "32x32", steps = 3 })).EnsureSuccessStatusCode();
        (await _client.PostAsJsonAsync("/v1/images/generations", new { prompt = "counted", size = "30x32" })).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        using (var hold = new StepHold(factory.Queue, "long"))
        {
            var running = await _client.SubmitOk(new { prompt = "long", steps = 200, width = 32, height = 32 });
            await hold.WaitHeld(running);
            var waiting = new[] { await _client.SubmitOk(new { prompt = "w1" }), await _client.SubmitOk(new { prompt = "w2" }) };
            Value(await Scrape(), "sd35_queue_depth").Should().Be(2);
            (await _client.Submit(new { prompt = "refused" })).StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
            foreach (var id in waiting.Append(running)) await _client.DeleteAsync($"/v1/images/{id}");
            await _client.WaitFinished(running, TimeSpan.FromMinutes(1));
        }
        var after = await Scrape();
        output.WriteLine(after);

        double Moved(string name, params string[] labels) => Value(after, name, labels) - Value(before, name, labels);
        Moved("http_server_request_duration_seconds_count", "http_route=\"/v1/images/generations\"", "http_response_status_code=\"200\"").Should().Be(1);
        Moved("http_server_request_duration_seconds_count", "http_route=\"/v1/images/generations\"", "http_response_status_code=\"400\"").Should().Be(1);
        Moved("http_server_request_duration_seconds_count", "http_route=\"/v1/images/\"", "http_response_status_code=\"429\"").Should().Be(1);
        Moved("sd35_queue_rejections_total").Should().Be(1);
        Moved("sd35_images_generated_total").Should().Be(1);
        Moved("sd35_jobs_finished_total", "status=\"cancelled\"").Should().Be(3);
        Moved("sd35_generation_duration_seconds_count").Should().Be(1);
        Moved("sd35_denoising_step_duration_seconds_count").Should().Be(3, "one sample per denoising step");
        Value(after, "sd35_denoising_step_duration_seconds_bucket", "le=\"+Inf\"").Should().Be(Value(after, "sd35_denoising_step_duration_seconds_count"));
        Value(after, "sd35_queue_depth").Should().Be(0);
        // The default --models resident: the first generation loaded each component once, and they stay.
        foreach (var component in new[] { "transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3" })
        {
            Value(after, "sd35_model_resident_bytes", $"component=\"{component}\"").Should().BePositive(component);
            Value(after, "sd35_model_load_duration_seconds_count", $"component=\"{component}\"").Should().Be(1, component);
        }
        Value(after, "sd35_process_memory_resident_bytes").Should().BeGreaterThan(50 << 20);
    }

    [PromtoolFact]
    public async Task Promtool_accepts_the_metrics_after_a_few_requests()
    {
        (await _client.PostAsJsonAsync("/v1/images/generations", new { prompt = "checked", size = "32x32" })).EnsureSuccessStatusCode();
        (await _client.PostAsJsonAsync("/v1/images/generations", new { prompt = "checked", n = 99 })).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await _client.GetAsync("/v1/images/0123456789abcdef0123456789abcdef")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        var metrics = await Scrape();

        var start = new ProcessStartInfo(Promtool.Path!, ["check", "metrics"])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var promtool = Process.Start(start)!;
        await promtool.StandardInput.WriteAsync(metrics);
        promtool.StandardInput.Close();
        var said = await promtool.StandardOutput.ReadToEndAsync() + await promtool.StandardError.ReadToEndAsync();
        await promtool.WaitForExitAsync();
        output.WriteLine($"promtool check metrics: exit {promtool.ExitCode}\n{said}");
        promtool.ExitCode.Should().Be(0, $"promtool found problems:\n{said}");
        said.Trim().Should().BeEmpty("no lint warnings either");
    }
}

/// <summary>Prometheus' <c>promtool</c>: Debian's <c>prometheus</c> package (<c>.ci/run</c> installs it), or <c>SD35_PROMTOOL</c>.</summary>
public static class Promtool
{
    public static string? Path { get; } = new[] { Environment.GetEnvironmentVariable("SD35_PROMTOOL"), "/usr/bin/promtool", "/usr/local/bin/promtool" }
        .FirstOrDefault(p => !string.IsNullOrEmpty(p) && File.Exists(p));
}

/// <summary>A test that needs promtool; reported as skipped (with the reason) where there is none.</summary>
public sealed class PromtoolFactAttribute : FactAttribute
{
    public PromtoolFactAttribute()
    {
        if (Promtool.Path is null) Skip = "no promtool found (apt-get install -y prometheus, or set SD35_PROMTOOL)";
    }
}
