using System.Text.Json;
using Sd35.Errors;

namespace Sd35.Server.Api;

/// <summary>
/// Reads a JSON request body within the size limit and maps what can go wrong to a 4xx answer naming the field:
/// too large (413), not JSON (415), malformed or mistyped (400 naming the JSON path), an unknown field (400).
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
        if (!request.HasJsonContentType())
            throw new BodyException(StatusCodes.Status415UnsupportedMediaType, new ErrorBody("the body must be JSON (Content-Type: application/json)"));
        if (request.ContentLength > maxBytes) throw TooLarge(maxBytes);

        var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > maxBytes) throw TooLarge(maxBytes);
            buffer.Write(chunk, 0, read);
        }

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
            var field = FieldOf(e.Path);
            var problem = field is null ? $"the body is not valid JSON ({e.Message})" : $"{field}: wrong type or malformed value";
            throw new BodyException(StatusCodes.Status400BadRequest, new ErrorBody(problem, field));
        }
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
