using System.Text.Json;
using Sd35.Errors;

namespace Sd35.Server.Api;

/// <summary>
/// Reads a request body within the size limit — JSON, or a multipart form whose fields have the JSON names and whose
/// <c>image</c> and <c>mask</c> parts are the uploaded files — and maps what can go wrong to a 4xx answer naming the
/// field: too large (413), neither (415), malformed or mistyped (400 naming the JSON path), an unknown field (400).
/// </summary>
public static class RequestReader
{
    public sealed class BodyException(int statusCode, ErrorBody body) : Exception(body.Error)
    {
        public int StatusCode { get; } = statusCode;
        public ErrorBody Body { get; } = body;
    }

    public static Task<ImageRequestBody> ReadAsync(HttpRequest request, int maxBytes, JsonSerializerOptions json, CancellationToken cancellationToken) =>
        ReadAsync<ImageRequestBody>(request, maxBytes, json, ImageRequestBody.FieldNames, cancellationToken);

    /// <param name="fieldNames">the body's wire names; any other is a 400 naming it</param>
    public static async Task<T> ReadAsync<T>(HttpRequest request, int maxBytes, JsonSerializerOptions json, IReadOnlySet<string> fieldNames, CancellationToken cancellationToken)
        where T : class
    {
        bool form = request.HasFormContentType;
        if (!request.HasJsonContentType() && !form)
            throw new BodyException(StatusCodes.Status415UnsupportedMediaType, new ErrorBody("the body must be JSON (Content-Type: application/json) or a multipart form (multipart/form-data)"));
        if (request.ContentLength > maxBytes) throw TooLarge(maxBytes);

        var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > maxBytes) throw TooLarge(maxBytes);
            buffer.Write(chunk, 0, read);
        }

        if (form) buffer = new MemoryStream(await FormAsJson(request, buffer, maxBytes, cancellationToken));
        try
        {
            using (var document = JsonDocument.Parse(buffer.ToArray()))
            {
                if (document.RootElement.ValueKind != JsonValueKind.Object)
                    throw new BodyException(StatusCodes.Status400BadRequest, new ErrorBody("the body must be a JSON object"));
                foreach (var property in document.RootElement.EnumerateObject())
                    if (!fieldNames.Contains(property.Name))
                        throw new RequestException(property.Name, $"unknown field '{property.Name}'; the fields are {string.Join(", ", fieldNames)}");
            }
            return JsonSerializer.Deserialize<T>(buffer.ToArray(), json)
                ?? throw new BodyException(StatusCodes.Status400BadRequest, new ErrorBody("the body must be a JSON object"));
        }
        catch (JsonException e)
        {
            throw Malformed(e);
        }
    }

    /// <summary>
    /// A multipart form as the JSON body it stands for: text fields as strings, other fields parsed as JSON values
    /// (a malformed one stays a string, which then fails as a mistyped field), files as base64 under their part name.
    /// </summary>
    static async Task<byte[]> FormAsJson(HttpRequest request, MemoryStream buffer, int maxBytes, CancellationToken cancellationToken)
    {
        buffer.Position = 0;
        request.Body = buffer;   // already read within the limit
        var form = await ReadFormAsync(request, maxBytes, TooLarge, cancellationToken);
        var json = new System.Text.Json.Nodes.JsonObject();
        foreach (var (name, values) in form)
        {
            var text = values.ToString();
            json[name] = ImageRequestBody.TextFieldNames.Contains(name) ? text : ParsedOrText(text);
        }
        foreach (var file in form.Files)
        {
            using var bytes = new MemoryStream();
            await file.CopyToAsync(bytes, cancellationToken);
            json[file.Name] = Convert.ToBase64String(bytes.ToArray());
        }
        return JsonSerializer.SerializeToUtf8Bytes(json);
    }

    /// <summary>
    /// Parses a multipart form whose body is at most <paramref name="maxBytes"/>, mapping what a client can get wrong
    /// to a 4xx: ASP.NET Core throws <see cref="InvalidDataException"/> for a malformed form (no or bad boundary) and
    /// for a form limit overrun, <see cref="IOException"/> for a body that ends inside a part. The value and part
    /// limits are raised to the body limit (the 4 MB value default would refuse a base64 image the body limit allows).
    /// </summary>
    /// <param name="tooLarge">the 413 to answer a limit overrun with (its message names the option that sets it)</param>
    public static async Task<IFormCollection> ReadFormAsync(HttpRequest request, int maxBytes, Func<int, BodyException> tooLarge, CancellationToken cancellationToken)
    {
        var options = new Microsoft.AspNetCore.Http.Features.FormOptions { MultipartBodyLengthLimit = maxBytes, ValueLengthLimit = maxBytes };
        try
        {
            return await request.ReadFormAsync(options, cancellationToken);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw tooLarge(maxBytes);
        }
        // The form reader's limit messages all read "… limit N exceeded." (value, count, key, headers, body length).
        catch (InvalidDataException e) when (e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase))
        {
            throw tooLarge(maxBytes);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or BadHttpRequestException)
        {
            throw new BodyException(StatusCodes.Status400BadRequest, new ErrorBody($"the multipart body could not be read ({e.Message})"));
        }
    }

    static System.Text.Json.Nodes.JsonNode? ParsedOrText(string text)
    {
        try { return System.Text.Json.Nodes.JsonNode.Parse(text); }
        catch (JsonException) { return text; }
    }

    /// <summary>Already checked JSON (field names known) as <typeparamref name="T"/>; a type error is a 400 naming the field.</summary>
    public static T Deserialize<T>(byte[] utf8, JsonSerializerOptions json) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(utf8, json)
                ?? throw new BodyException(StatusCodes.Status400BadRequest, new ErrorBody("the body must be a JSON object"));
        }
        catch (JsonException e)
        {
            throw Malformed(e);
        }
    }

    static BodyException Malformed(JsonException e)
    {
        var field = FieldOf(e.Path);
        var problem = field is null ? $"the body is not valid JSON ({e.Message})" : $"{field}: wrong type or malformed value";
        return new BodyException(StatusCodes.Status400BadRequest, new ErrorBody(problem, field));
    }

    /// <summary><c>$.skip_layer_guidance.layers[0]</c> → <c>skip_layer_guidance</c>: the top-level field at fault.</summary>
    static string? FieldOf(string? path)
    {
        if (path is null || !path.StartsWith("$.", StringComparison.Ordinal)) return null;
        var rest = path[2..];
        int end = rest.IndexOfAny(['.', '[']);
        return end < 0 ? rest : rest[..end];
    }

    static BodyException TooLarge(int maxBytes) =>
        new(StatusCodes.Status413PayloadTooLarge, new ErrorBody($"the body is larger than this server's limit of {maxBytes} bytes"));
}
