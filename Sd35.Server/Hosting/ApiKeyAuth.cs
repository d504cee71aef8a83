using Sd35.Server.Api.OpenAi;

namespace Sd35.Server.Hosting;

/// <summary>
/// With a key (<see cref="AccessOptions.Key"/>), every <c>/v1</c> route and <c>/metrics</c> need
/// <c>Authorization: Bearer KEY</c>; anything else is 401 in OpenAI's error shape. The GUI's page and files stay open
/// (they hold nothing), and the GUI exchanges the key once for a session cookie (<c>POST /v1/session</c>), because a
/// browser's EventSource cannot send an Authorization header; the cookie holds a value derived from the key, is
/// HttpOnly and SameSite=Strict (no other site's page can use it), and lasts until the browser closes.
/// </summary>
public static class ApiKeyAuth
{
    const string Cookie = "sd35_session";
    const string CookiePurpose = "sd35 gui session";

    public static void UseApiKeys(this WebApplication app, AccessOptions access)
    {
        if (access.Key is not { } key) return;
        var sessionToken = new ApiKey(key.SessionToken(CookiePurpose));
        app.Use(async (http, next) =>
        {
            if (!Protected(http.Request.Path) || key.Matches(BearerOf(http.Request)) || sessionToken.Matches(http.Request.Cookies[Cookie]))
            {
                await next(http);
                return;
            }
            bool given = http.Request.Headers.Authorization.Count > 0;
            http.Response.Headers.WWWAuthenticate = "Bearer";
            await OpenAiErrors.Write(http, StatusCodes.Status401Unauthorized,
                given ? "the API key is not valid for this server" : "this server needs an API key: send 'Authorization: Bearer <key>'",
                code: given ? "invalid_api_key" : "missing_api_key");
        });
    }

    /// <summary>The GUI's one exchange: a valid key (checked by the middleware above) gets the session cookie.</summary>
    public static void MapSession(this WebApplication app, AccessOptions access)
    {
        app.MapPost("/v1/session", (HttpContext http) =>
        {
            if (access.Key is { } key)
                http.Response.Cookies.Append(Cookie, key.SessionToken(CookiePurpose),
                    new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/", Secure = http.Request.IsHttps });
            return TypedResults.NoContent();
        }).WithTags("server").WithSummary("The GUI's key check: 204 with a session cookie when the Authorization header holds the key (401 otherwise).");
    }

    static bool Protected(PathString path) =>
        path.StartsWithSegments("/v1", StringComparison.OrdinalIgnoreCase) || path.StartsWithSegments("/metrics", StringComparison.OrdinalIgnoreCase);

    static string? BearerOf(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        return header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? header[scheme.Length..].Trim() : null;
    }
}
