using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sd35.Server.Api.OpenAi;

/// <summary>
/// OpenAI's error body, <c>{"error": {"message", "type", "param", "code"}}</c>, which its SDKs turn into their
/// exception with the message. <c>param</c> names the request field at fault; <c>type</c> is OpenAI's class of error.
/// </summary>
public static class OpenAiErrors
{
    public sealed record Envelope([property: JsonPropertyName("error")] Detail Error);

    public sealed record Detail(
        [property: JsonPropertyName("message")] string Message,
        [property: JsonPropertyName("type")] string Type,
        [property: JsonPropertyName("param")] string? Param,
        [property: JsonPropertyName("code")] string? Code);

    // Its own options: the body's names are OpenAI's, whatever the app's JSON naming is; null param and code are written.
    static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    public static Envelope Body(int status, string message, string? param = null, string? code = null) =>
        new(new Detail(message, TypeOf(status), param, code ?? CodeOf(status)));

    public static IResult Result(int status, string message, string? param = null, string? code = null) =>
        TypedResults.Json(Body(status, message, param, code), Json, statusCode: status);

    public static Task Write(HttpContext http, int status, string message, string? param = null, string? code = null)
    {
        http.Response.StatusCode = status;
        return http.Response.WriteAsJsonAsync(Body(status, message, param, code), Json);
    }

    /// <summary>A full queue: 429 with <c>Retry-After</c>, as the native API answers.</summary>
    public static IResult QueueFull(HttpContext http, int retryAfterSeconds, string message)
    {
        http.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Result(StatusCodes.Status429TooManyRequests, message);
    }

    static string TypeOf(int status) => status switch
    {
        StatusCodes.Status401Unauthorized => "authentication_error",
        StatusCodes.Status429TooManyRequests => "rate_limit_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };

    static string? CodeOf(int status) => status switch
    {
        StatusCodes.Status404NotFound => "not_found",
        StatusCodes.Status413PayloadTooLarge => "request_too_large",
        StatusCodes.Status415UnsupportedMediaType => "unsupported_media_type",
        StatusCodes.Status429TooManyRequests => "rate_limit_exceeded",
        StatusCodes.Status503ServiceUnavailable => "overloaded",
        _ => null,
    };
}
