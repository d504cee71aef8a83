using System.Net.ServerSentEvents;
using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;
using Sd35.Errors;
using Sd35.Pipeline;
using Sd35.Server.Hosting;
using Sd35.Server.Jobs;

namespace Sd35.Server.Api;

/// <summary>The HTTP API: jobs under <c>/v1/images</c>, the synchronous <c>/v1/generate</c>, health and info.</summary>
public static class ImageEndpoints
{
    public static void MapImageApi(this WebApplication app)
    {
        var images = app.MapGroup("/v1/images").WithTags("images");
        // Not in the group: a group's "" or "/" route reads "/v1/images/" in metrics' http_route; both paths still match.
        app.MapPost("/v1/images", Submit).WithTags("images")
            .Accepts<ImageRequestBody>("application/json", "multipart/form-data")
            .Produces<JobAccepted>(StatusCodes.Status202Accepted)
            .Produces<ErrorBody>(StatusCodes.Status400BadRequest)
            .Produces<ErrorBody>(StatusCodes.Status429TooManyRequests)
            .WithSummary("Queue a generation; answers 202 with the job id, 429 with Retry-After when the queue is full.");
        images.MapGet("/{id}", Get)
            .Produces<JobSnapshot>().Produces<ErrorBody>(StatusCodes.Status404NotFound)
            .WithSummary("Status, progress (steps done), the parameters it runs with and the seconds per section.");
        images.MapGet("/{id}/png", Png)
            .Produces(StatusCodes.Status200OK, contentType: "image/png")
            .Produces<ErrorBody>(StatusCodes.Status404NotFound).Produces<ErrorBody>(StatusCodes.Status409Conflict)
            .WithSummary("The (first) image, once the job succeeded.");
        images.MapGet("/{id}/png/{index:int}", PngAt)
            .Produces(StatusCodes.Status200OK, contentType: "image/png")
            .Produces<ErrorBody>(StatusCodes.Status404NotFound).Produces<ErrorBody>(StatusCodes.Status409Conflict)
            .WithSummary("Image number index (1..n) of the job's batch, once the job succeeded.");
        images.MapGet("/{id}/events", Events)
            .Produces<JobSnapshot>(contentType: "text/event-stream").Produces<ErrorBody>(StatusCodes.Status404NotFound)
            .WithSummary("Server-sent events: one 'progress' event per change, then 'succeeded', 'failed' or 'cancelled'.");
        images.MapDelete("/{id}", Cancel)
            .Produces<JobSnapshot>(StatusCodes.Status202Accepted)
            .Produces<ErrorBody>(StatusCodes.Status404NotFound).Produces<ErrorBody>(StatusCodes.Status409Conflict)
            .WithSummary("Cancels: a queued job at once, a running one at its next step boundary.");

        app.MapPost("/v1/generate", Generate).WithTags("images")
            .Accepts<ImageRequestBody>("application/json", "multipart/form-data")
            .Produces(StatusCodes.Status200OK, contentType: "image/png")
            .Produces<ErrorBody>(StatusCodes.Status400BadRequest)
            .Produces<ErrorBody>(StatusCodes.Status429TooManyRequests)
            .WithSummary("The same as POST /v1/images with n = 1, waiting for the image (the job is cancelled if the client goes away).");
        app.MapGet("/v1/health", Health).WithTags("server").Produces<HealthBody>();
        app.MapGet("/v1/info", Info).WithTags("server").Produces<InfoBody>();
    }

    public sealed record JobAccepted(string Id, JobStatus Status, int? QueuePosition);
    public sealed record HealthBody(string Status, bool Busy, int Waiting, int QueueLength);
    public sealed record InfoBody(
        string Model, string Config, string Device, string DType, string Models, string Memory, int DefaultSize, int DefaultSteps, int SizeMultipleOf,
        int[] DefaultSkipLayers, ServerLimits Limits, Dictionary<string, string> Versions, PrecisionInfo Precision, IReadOnlyList<ComponentSummary> Components);
    /// <summary>The dtypes the models compute in, how the weights are stored, and the CPU measurement that chose them (null when given).</summary>
    public sealed record PrecisionInfo(string Compute, string Vae, string Storage, string? Measured, string Summary);
    public sealed record ServerLimits(int QueueLength, int MaxPromptLength, int MaxBodyBytes, int MaxSteps, int MaxImageSide, int MaxImages);

    static async Task<IResult> Submit(HttpContext http, GenerationQueue queue, PipelineAdapter pipeline, ServerOptions options, IOptions<JsonOptions> json)
    {
        var (job, refused) = await Accept(http, queue, pipeline, options, json.Value.SerializerOptions);
        if (refused is not null) return refused;
        return TypedResults.Accepted($"/v1/images/{job!.Id}", new JobAccepted(job.Id, job.Status, queue.PositionOf(job)));
    }

    static async Task<IResult> Generate(HttpContext http, GenerationQueue queue, PipelineAdapter pipeline, ServerOptions options, IOptions<JsonOptions> json)
    {
        var (job, refused) = await Accept(http, queue, pipeline, options, json.Value.SerializerOptions, oneImage: true);
        if (refused is not null) return refused;
        try
        {
            if (await queue.AwaitAllOrCancel([job!], http.RequestAborted) is { } unfinished) return Error(unfinished.StatusCode, unfinished.Message);
        }
        catch (OperationCanceledException)
        {
            return TypedResults.Empty;
        }
        return TypedResults.PhysicalFile(job!.PngPath!, "image/png");
    }

    /// <summary>Reads and checks the body, then queues the job: a 4xx answer, or the queued job.</summary>
    /// <param name="oneImage">the answer is one PNG, so n must be 1</param>
    static async Task<(GenerationJob? Job, IResult? Refused)> Accept(HttpContext http, GenerationQueue queue, PipelineAdapter pipeline, ServerOptions options, JsonSerializerOptions json,
        bool oneImage = false)
    {
        GenerationRequest request;
        try
        {
            var body = await RequestReader.ReadAsync(http.Request, options.MaxBodyBytes, json, http.RequestAborted);
            if (oneImage && body.N is > 1) throw new RequestException("n", $"POST /v1/generate answers one PNG; for n = {body.N} use POST /v1/images");
            request = pipeline.ToRequest(body);
        }
        catch (Exception e) when (RequestError.Of(e) is { } error)
        {
            return (null, TypedResults.Json(new ErrorBody(error.Message, error.Field), statusCode: error.StatusCode));
        }

        var job = new GenerationJob(request);
        if (!queue.TryEnqueue(job))
        {
            http.Response.Headers.RetryAfter = queue.RetryAfterSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
            return (null, Error(StatusCodes.Status429TooManyRequests, $"the queue is full ({queue.Capacity} waiting); retry later"));
        }
        return (job, null);
    }

    static IResult Get(string id, GenerationQueue queue) =>
        queue.Find(id) is { } job ? TypedResults.Ok(job.Snapshot(queue.PositionOf(job))) : NotFound(id);

    static IResult Png(string id, GenerationQueue queue)
    {
        if (queue.Find(id) is not { } job) return NotFound(id);
        var snapshot = job.Snapshot();
        return snapshot.Status == JobStatus.Succeeded && job.PngPath is { } png
            ? TypedResults.PhysicalFile(png, "image/png", fileDownloadName: null)
            : Error(StatusCodes.Status409Conflict, $"job {id} is {snapshot.Status.ToString().ToLowerInvariant()}; the image exists once it has succeeded");
    }

    static IResult PngAt(string id, int index, GenerationQueue queue)
    {
        if (queue.Find(id) is not { } job) return NotFound(id);
        var snapshot = job.Snapshot();
        if (snapshot.Status != JobStatus.Succeeded)
            return Error(StatusCodes.Status409Conflict, $"job {id} is {snapshot.Status.ToString().ToLowerInvariant()}; the images exist once it has succeeded");
        var files = job.PngPaths;
        return index >= 1 && index <= files.Count
            ? TypedResults.PhysicalFile(files[index - 1], "image/png", fileDownloadName: null)
            : Error(StatusCodes.Status404NotFound, $"job {id} has images 1..{files.Count}; there is no image {index}");
    }

    static IResult Events(string id, GenerationQueue queue, HttpContext http)
    {
        if (queue.Find(id) is not { } job) return NotFound(id);
        return TypedResults.ServerSentEvents(Stream(job, queue, http.RequestAborted));
    }

    static async IAsyncEnumerable<SseItem<JobSnapshot>> Stream(GenerationJob job, GenerationQueue queue, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var snapshot in job.Updates(() => queue.PositionOf(job), cancellationToken))
        {
            var name = snapshot.Status is JobStatus.Queued or JobStatus.Running ? "progress" : snapshot.Status.ToString().ToLowerInvariant();
            yield return new SseItem<JobSnapshot>(snapshot, name);
        }
    }

    static IResult Cancel(string id, GenerationQueue queue)
    {
        if (queue.Find(id) is not { } job) return NotFound(id);
        return queue.Cancel(job)
            ? TypedResults.Accepted($"/v1/images/{id}", job.Snapshot())
            : Error(StatusCodes.Status409Conflict, $"job {id} already finished ({job.Status.ToString().ToLowerInvariant()})");
    }

    static IResult Health(GenerationQueue queue) => TypedResults.Ok(new HealthBody("ok", queue.Busy, queue.Waiting, queue.Capacity));

    static IResult Info(PipelineAdapter pipeline, ServerOptions options)
    {
        static string VersionOf(Assembly a) =>
            a.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? a.GetName().Version?.ToString() ?? "?";
        var versions = new Dictionary<string, string>
        {
            ["sd35_server"] = VersionOf(typeof(ImageEndpoints).Assembly),
            ["sd35_model"] = VersionOf(typeof(StableDiffusion3Pipeline).Assembly),
            ["torchsharp"] = VersionOf(typeof(TorchSharp.torch).Assembly),
            ["dotnet"] = Environment.Version.ToString(),
        };
        return TypedResults.Ok(new InfoBody(
            pipeline.ModelDescription, pipeline.MeshId ?? "single device", pipeline.Device, pipeline.DType.ToString().ToLowerInvariant(),
            options.Pipeline.Residency.ToString().ToLowerInvariant(), pipeline.Memory,
            pipeline.DefaultSize, options.DefaultSteps, pipeline.SizeMultiple, pipeline.DefaultSkipLayers,
            new ServerLimits(options.QueueLength, options.MaxPromptLength, options.MaxBodyBytes, options.Pipeline.Limits.MaxSteps, options.Pipeline.Limits.MaxImageSide, options.Pipeline.Limits.MaxImages),
            versions, PrecisionOf(pipeline.Precision),
            pipeline.Components));
    }

    static PrecisionInfo PrecisionOf(PipelinePrecision precision) => new(
        Sd35.Numerics.ComputeDTypeProbe.Name(precision.Compute), Sd35.Numerics.ComputeDTypeProbe.Name(precision.Vae),
        precision.Storage.ToString(), precision.Measured?.ToString(), precision.ToString());

    static IResult NotFound(string id) => Error(StatusCodes.Status404NotFound, $"no job '{id}' (unknown, or forgotten after the server's keep-jobs limit)");

    static IResult Error(int status, string message) => TypedResults.Json(new ErrorBody(message), statusCode: status);
}
