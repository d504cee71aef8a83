using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sd35.Server.Hosting;
using Sd35.Server.Jobs;

namespace Sd35.Server.Tests;

/// <summary>
/// The server on a real loopback socket (port chosen by the system), for the browser, load and restart tests; the
/// API tests use the in-process <see cref="ServerFactory"/>. Each instance writes to its own temporary folder.
/// </summary>
public sealed class LiveServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly bool _ownsFolder;

    LiveServer(WebApplication app, string outputFolder, bool ownsFolder)
    {
        _app = app;
        OutputFolder = outputFolder;
        _ownsFolder = ownsFolder;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseAddress = new Uri(address);
        Client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromMinutes(3) };
    }

    public Uri BaseAddress { get; }
    public HttpClient Client { get; }
    public string OutputFolder { get; }
    public IServiceProvider Services => _app.Services;
    public GenerationQueue Queue => _app.Services.GetRequiredService<GenerationQueue>();

    /// <param name="outputFolder">reuse a folder (the restart test); null: a fresh temporary one, deleted on dispose</param>
    public static async Task<LiveServer> StartAsync(string? outputFolder = null, params string[] args)
    {
        bool owns = outputFolder is null;
        outputFolder ??= Directory.CreateTempSubdirectory("sd35-server-test-").FullName;
        var app = ServerApp.Build(["--urls", "http://127.0.0.1:0", "--output", outputFolder, "--steps", "2", .. args],
            builder => builder.Logging.SetMinimumLevel(LogLevel.Warning));
        await app.StartAsync();
        return new LiveServer(app, outputFolder, owns);
    }

    public Task StopAsync() => _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.DisposeAsync();
        if (_ownsFolder) Directory.Delete(OutputFolder, recursive: true);
    }
}

/// <summary>Small helpers shared by the tests: JSON with the server's naming, waiting for a job's end.</summary>
public static class Api
{
    public static readonly JsonSerializerOptions Json = CreateJson();

    static JsonSerializerOptions CreateJson()
    {
        var json = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        ServerApp.ConfigureJson(json);
        return json;
    }

    public static Task<HttpResponseMessage> Submit(this HttpClient client, object body) => client.PostAsJsonAsync("/v1/images", body, Json);

    public static async Task<string> SubmitOk(this HttpClient client, object body)
    {
        var response = await client.Submit(body);
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != System.Net.HttpStatusCode.Accepted) throw new InvalidOperationException($"expected 202, got {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
    }

    public static async Task<JobSnapshot> Status(this HttpClient client, string id) =>
        (await client.GetFromJsonAsync<JobSnapshot>($"/v1/images/{id}", Json))!;

    /// <summary>Polls until the job is finished (or the time is up, which fails the test).</summary>
    public static async Task<JobSnapshot> WaitFinished(this HttpClient client, string id, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(2));
        while (true)
        {
            var job = await client.Status(id);
            if (job.Status is JobStatus.Succeeded or JobStatus.Failed or JobStatus.Cancelled) return job;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"job {id} still {job.Status} at step {job.Step}");
            await Task.Delay(50);
        }
    }

    /// <summary>Polls until the job runs and has done at least <paramref name="steps"/> steps.</summary>
    public static async Task WaitRunning(this HttpClient client, string id, int steps = 0)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (true)
        {
            var job = await client.Status(id);
            if (job.Status == JobStatus.Running && job.Step >= steps) return;
            if (job.Status is not (JobStatus.Queued or JobStatus.Running)) throw new InvalidOperationException($"job {id} ended ({job.Status}) before running: {job.Error}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"job {id} not running after 2 min");
            await Task.Delay(20);
        }
    }
}
