using System.Diagnostics.Metrics;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Sd35.Diagnostics;
using Sd35.Pipeline;
using Sd35.Server.Jobs;

namespace Sd35.Server.Hosting;

/// <summary>
/// The server's metrics as <see cref="System.Diagnostics.Metrics"/> instruments, exported by OpenTelemetry at
/// <c>GET /metrics</c> in Prometheus' text format. Requests by route and status come from ASP.NET Core's own meter
/// (<c>http_server_request_duration_seconds</c>, labelled <c>http_route</c> and <c>http_response_status_code</c>);
/// this class adds the queue, the generations (histograms, so p50/p99 are PromQL's <c>histogram_quantile</c>), model
/// loads, resident model bytes per component and the process's memory.
/// </summary>
public sealed class ServerMetrics : IGenerationObserver
{
    public const string MeterName = "Sd35.Server";

    // Seconds from a tiny model's milliseconds to SD3.5 Large's minutes on a CPU.
    static readonly double[] StepBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100];
    static readonly double[] GenerationBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500];

    readonly Meter _meter;
    readonly Histogram<double> _generation, _step, _load;
    readonly Counter<long> _jobs;
    long _images;

    /// <param name="meters">the app's meter factory: meters are the app's own, so apps hosted side by side (tests) do not mix</param>
    public ServerMetrics(IMeterFactory meters, GenerationQueue queue, PipelineAdapter pipeline, ConnectionLimits limits)
    {
        _meter = meters.Create(MeterName);
        _generation = _meter.CreateHistogram("sd35.generation.duration", "s", "Seconds of each finished generation (load, encoding, denoising, decoding)",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = GenerationBuckets });
        _step = _meter.CreateHistogram("sd35.denoising.step.duration", "s", "Seconds of each denoising step",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = StepBuckets });
        _load = _meter.CreateHistogram("sd35.model.load.duration", "s", "Seconds to load one model (component) onto one device",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = GenerationBuckets });
        _jobs = _meter.CreateCounter<long>("sd35.jobs.finished", "{job}", "Jobs finished, by final status (succeeded, failed, cancelled)");
        _meter.CreateObservableCounter("sd35.images.generated", () => _images, "{image}", "Images generated (succeeded jobs)");
        _meter.CreateObservableGauge("sd35.queue.depth", () => queue.Waiting, "{job}", "Jobs waiting behind the running one");
        _meter.CreateObservableGauge("sd35.queue.running", () => queue.Busy ? 1 : 0, "{job}", "Jobs running now (0 or 1)");
        _meter.CreateObservableCounter("sd35.queue.rejections", () => queue.Refusals, "{request}", "Requests refused because the queue was full (429) or the server stopping");
        _meter.CreateObservableCounter("sd35.connection.rejections", () =>
            limits.Refusals.Select(r => new Measurement<long>(r.Value, new KeyValuePair<string, object?>("limit", r.Key))), "{request}",
            "Requests refused by the connection and event-stream limits, by limit");
        _meter.CreateObservableGauge("sd35.event_streams.open", () => limits.OpenEventStreams, "{stream}", "Server-sent-event streams open now");
        _meter.CreateObservableGauge("sd35.model.resident", () =>
            pipeline.ResidentModelBytes().Select(c => new Measurement<long>(c.Value, new KeyValuePair<string, object?>("component", c.Key))), "By",
            "Bytes of parameters and buffers of the models kept loaded, per component (none with --models staged)");
        _meter.CreateObservableGauge("sd35.process.memory.resident", () => ProcessMemory.ResidentBytes, "By", "This process's resident memory (VmRSS)");
        _meter.CreateObservableGauge("sd35.process.memory.managed", () => GC.GetTotalMemory(false), "By", "Bytes on the .NET heap");

        queue.JobFinished += Record;
        pipeline.Observe(this);
    }

    void IGenerationObserver.ModelLoaded(ModelLoad load) => _load.Record(load.Seconds, new KeyValuePair<string, object?>("component", load.Component));

    void Record(GenerationJob job)
    {
        var snapshot = job.Snapshot();
        _jobs.Add(1, new KeyValuePair<string, object?>("status", snapshot.Status.ToString().ToLowerInvariant()));
        if (snapshot.Status != JobStatus.Succeeded || snapshot.Timings is not { } timings) return;
        Interlocked.Increment(ref _images);
        _generation.Record(timings.TotalSeconds);
        foreach (var seconds in timings.StepSeconds) _step.Record(seconds);
    }

    /// <summary>OpenTelemetry's meter provider with the Prometheus exporter, reading this meter and ASP.NET Core's.</summary>
    public static void AddServices(WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ServerMetrics>();
        builder.Services.AddOpenTelemetry().ConfigureResource(r => r.AddService("sd35-server")).WithMetrics(metrics => metrics
            .AddMeter(MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel")
            // Every scrape sees the counters as they are now (the exporter caches for 300 ms by default).
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
    }

    public static void MapMetrics(WebApplication app)
    {
        // Created with the app, so its hooks see the first job and the first model load.
        app.Services.GetRequiredService<ServerMetrics>();
        app.MapPrometheusScrapingEndpoint("/metrics");
    }
}
