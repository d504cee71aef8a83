using System.Text.Json;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;
using Sd35.Errors;
using Sd35.Pipeline;
using Sd35.Server.Hosting;
using Sd35.Server.Jobs;

namespace Sd35.Server.Api.OpenAi;

/// <summary>
/// OpenAI's images API beside the native one, so OpenAI's SDKs and tools can use this server by its base URL:
/// <c>POST /v1/images/generations</c>, <c>POST /v1/images/edits</c>, <c>GET /v1/models</c>. Each image is a job of
/// the same queue (so the same limits, 429s and <c>GET /v1/images/{id}</c>); the answer waits for all of them.
/// Errors are OpenAI's shape (<see cref="OpenAiErrors"/>), with the native API's status codes.
/// </summary>
public static class OpenAiEndpoints
{
    public sealed record ImagesResponse(long Created, IReadOnlyList<ImageData> Data);

    /// <summary>One image: <c>b64_json</c> (the PNG) or <c>url</c> (absolute, the native <c>/v1/images/{id}/png</c>).</summary>
    public sealed record ImageData(
        [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? B64Json,
        [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Url);

    public sealed record ModelList(string Object, IReadOnlyList<ModelEntry> Data);
    public sealed record ModelEntry(string Id, string Object, long Created, string OwnedBy);

    public static void MapOpenAiApi(this WebApplication app)
    {
        var openAi = app.MapGroup("/v1").WithTags("openai");
        openAi.MapPost("/images/generations", Generations)
            .Accepts<OpenAiImageRequest>("application/json")
            .Produces<ImagesResponse>()
            .Produces<OpenAiErrors.Envelope>(StatusCodes.Status400BadRequest)
            .Produces<OpenAiErrors.Envelope>(StatusCodes.Status429TooManyRequests)
            .WithSummary("OpenAI's image generation: n images (seeds seed, seed+1, …) as b64_json or absolute URLs; waits for them.");
        openAi.MapPost("/images/edits", Edits)
            .Accepts<OpenAiImageRequest>("multipart/form-data")
            .Produces<ImagesResponse>()
            .Produces<OpenAiErrors.Envelope>(StatusCodes.Status400BadRequest)
            .Produces<OpenAiErrors.Envelope>(StatusCodes.Status413PayloadTooLarge)
            .WithSummary("OpenAI's image edit (multipart: image, optional mask whose alpha-0 pixels are repainted, prompt, n, size, strength).");
        openAi.MapGet("/models", Models).Produces<ModelList>().WithSummary("The model this server serves, as OpenAI lists models.");
        openAi.MapGet("/models/{id}", Model).Produces<ModelEntry>().Produces<OpenAiErrors.Envelope>(StatusCodes.Status404NotFound);
    }

    /// <summary>The served model's id: its folder's name, or <c>sd35-tiny-reference</c> for the built-in components.</summary>
    public static string ModelId(ServerOptions options) =>
        options.Pipeline.Source.Model is not { } model ? "sd35-tiny-reference" : Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(model)));

    static readonly long Started = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    static IResult Models(ServerOptions options) =>
        TypedResults.Ok(new ModelList("list", [new ModelEntry(ModelId(options), "model", Started, "sd35")]));

    static IResult Model(string id, ServerOptions options) =>
        id == ModelId(options)
            ? TypedResults.Ok(new ModelEntry(id, "model", Started, "sd35"))
            : OpenAiErrors.Result(StatusCodes.Status404NotFound, $"no model '{id}' here; this server serves '{ModelId(options)}'", "model", OpenAiErrors.ModelNotFound);

    static async Task<IResult> Generations(HttpContext http, GenerationQueue queue, PipelineAdapter pipeline, OpenAiJobPlanner planner,
        ServerOptions options, IOptions<JsonOptions> json)
    {
        IReadOnlyList<GenerationRequest> requests;
        bool base64;
        try
        {
            var body = await RequestReader.ReadAsync<OpenAiImageRequest>(http.Request, options.MaxBodyBytes, json.Value.SerializerOptions,
                OpenAiImageRequest.FieldNames, http.RequestAborted);
            var (count, size) = (body.Count, body.Dimensions());
            base64 = body.WantsBase64;
            var settings = Settings(body, size, pipeline, options, json.Value.SerializerOptions, sizeParam: "size");
            requests = planner.Generations(settings, count);
        }
        catch (Exception e) when (AsError(e) is { } error)
        {
            return error;
        }
        return await Run(http, queue, requests, base64);
    }

    static async Task<IResult> Edits(HttpContext http, GenerationQueue queue, PipelineAdapter pipeline, OpenAiJobPlanner planner,
        ServerOptions options, AccessOptions access, IOptions<JsonOptions> json)
    {
        IReadOnlyList<GenerationRequest> requests;
        bool base64;
        try
        {
            var form = await OpenAiEditForm.ReadAsync(http.Request, access.MaxUploadBytes, options.Pipeline.Limits.MaxImageSide, json.Value.SerializerOptions, http.RequestAborted);
            var (count, size) = (form.Body.Count, form.Body.Dimensions());
            base64 = form.Body.WantsBase64;
            if (size is { } asked && asked != (form.Image.Width, form.Image.Height))
                throw new RequestException("size", $"is {asked.Width}x{asked.Height} but the image is {form.Image.Width}x{form.Image.Height}; this server edits at the image's size");
            // The image's size is checked as a requested size would be, and named as the image when it does not fit.
            var settings = Settings(form.Body, (form.Image.Width, form.Image.Height), pipeline, options, json.Value.SerializerOptions, sizeParam: "image");
            requests = planner.Edits(new ImageEdit(settings, form.Image, form.Mask, form.Strength, count));
        }
        catch (Exception e) when (AsError(e) is { } error)
        {
            return error;
        }
        return await Run(http, queue, requests, base64);
    }

    /// <summary>
    /// The generation settings, checked as the native API checks them, plus the model's name; a bad width or height
    /// is named as <paramref name="sizeParam"/>, OpenAI's field for it.
    /// </summary>
    static GenerationRequest Settings(OpenAiImageRequest body, (int Width, int Height)? size, PipelineAdapter pipeline, ServerOptions options,
        JsonSerializerOptions json, string sizeParam)
    {
        if (body.Model is { } model && !string.Equals(model, ModelId(options), StringComparison.OrdinalIgnoreCase))
            throw new OpenAiParamException("model", $"'{model}' is not served here; this server serves '{ModelId(options)}' (GET /v1/models)", OpenAiErrors.ModelNotFound);
        try
        {
            return pipeline.ToRequest(body.ToNative(size, json));
        }
        catch (RequestException e) when (e.Field is "width" or "height")
        {
            throw new OpenAiParamException(sizeParam, e.Message);
        }
    }

    /// <summary>Queues all the jobs or none, waits for them, and answers OpenAI's list of images.</summary>
    static async Task<IResult> Run(HttpContext http, GenerationQueue queue, IReadOnlyList<GenerationRequest> requests, bool base64)
    {
        // More images than the queue ever holds would be refused forever: that is the request's fault, not a wait.
        if (requests.Count > queue.Capacity)
            return OpenAiErrors.Result(StatusCodes.Status400BadRequest,
                $"n: this server queues at most {queue.Capacity} jobs (--queue-length), one per image; got {requests.Count}", "n");
        var jobs = requests.Select(r => new GenerationJob(r)).ToList();
        if (!queue.TryEnqueue(jobs))
            return OpenAiErrors.QueueFull(http, queue.RetryAfterSeconds(),
                $"the queue cannot take {jobs.Count} more job{(jobs.Count == 1 ? "" : "s")} now ({queue.Capacity} may wait); retry later");

        try
        {
            if (await queue.AwaitAllOrCancel(jobs, http.RequestAborted) is { } unfinished)
                return OpenAiErrors.Result(unfinished.StatusCode, unfinished.Message);
            var images = new List<ImageData>();
            foreach (var job in jobs)
                images.Add(base64
                    ? new ImageData(Convert.ToBase64String(await File.ReadAllBytesAsync(job.PngPath!, http.RequestAborted)), null)
                    : new ImageData(null, $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}/v1/images/{job.Id}/png"));
            return TypedResults.Ok(new ImagesResponse(DateTimeOffset.UtcNow.ToUnixTimeSeconds(), images));
        }
        catch (OperationCanceledException)
        {
            return TypedResults.Empty;
        }
    }

    /// <summary>A field named differently on OpenAI's side than in the native checks (width → size), or with OpenAI's code.</summary>
    sealed class OpenAiParamException(string param, string message, string? code = null) : Exception(message)
    {
        public string Param { get; } = param;
        public string? Code { get; } = code;
    }

    /// <summary>What can go wrong before anything is queued, as OpenAI's error; null for anything else (a bug: 500).</summary>
    static IResult? AsError(Exception e) =>
        e is OpenAiParamException param ? OpenAiErrors.Result(StatusCodes.Status400BadRequest, param.Message, param.Param, param.Code)
        : RequestError.Of(e) is { } error ? OpenAiErrors.Result(error.StatusCode, error.Message, error.Field)
        : null;
}
