using Microsoft.Extensions.Logging.Console;

namespace Sd35.Server.Hosting;

/// <summary>
/// Every request's id (ASP.NET Core's <see cref="HttpContext.TraceIdentifier"/>, which its own log scope already
/// carries as <c>RequestId</c>) goes back as the <c>X-Request-Id</c> header, and is kept for the code the request
/// runs (<see cref="Current"/>), so a job's log lines on the generation thread carry the id of the request that made it.
/// Logs are one line per entry with their scopes: plain text, or JSON with <c>--log-format json</c>.
/// </summary>
public static class RequestIds
{
    public const string Header = "X-Request-Id";

    static readonly AsyncLocal<string?> CurrentId = new();

    /// <summary>The id of the request whose code is running now; null outside a request.</summary>
    public static string? Current => CurrentId.Value;

    public static void UseRequestIds(this WebApplication app) => app.Use(async (http, next) =>
    {
        CurrentId.Value = http.TraceIdentifier;
        http.Response.Headers[Header] = http.TraceIdentifier;
        await next(http);
    });

    public static void AddLogging(WebApplicationBuilder builder, LogFormat format)
    {
        builder.Logging.ClearProviders();
        if (format == LogFormat.Json)
            builder.Logging.AddJsonConsole(o => { o.IncludeScopes = true; o.UseUtcTimestamp = true; o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ"; });
        else
            builder.Logging.AddSimpleConsole(o => { o.IncludeScopes = true; o.SingleLine = true; o.UseUtcTimestamp = true; o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ "; });
    }
}
