using Sd35.Server.Api.OpenAi;

namespace Sd35.Server.Hosting;

/// <summary>
/// With a key (<see cref="AccessOptions.Key"/>), every <c>/v1</c> route and <c>/metrics</c> need
/// <c>Authorization: Bearer KEY</c>; anything else is 401 in OpenAI's error shape. The GUI's page and files stay open
/// (they hold nothing), and the GUI exchanges the key once for a session cookie (<c>POST /v1/session</c>), because a
/// browser's EventSource cannot send an Authorization header. The cookie holds a <see cref="SessionTokens"/> value
/// (nothing derived from the key), is HttpOnly and SameSite=Strict, and is good for
/// <see cref="SessionTokens.DefaultLifetime"/> or until the server restarts. A request that changes something on the
/// cookie alone must come from this server's own page (<see cref="FromOwnPage"/>): 403 otherwise.
/// </summary>
public static class ApiKeyAuth
{
    const string Cookie = "sd35_session";

    public static void UseApiKeys(this WebApplication app, AccessOptions access)
    {
        if (access.Key is not { } key) return;
        var sessions = app.Services.GetRequiredService<SessionTokens>();
        app.Use(async (http, next) =>
        {
            if (!Protected(http.Request.Path) || key.Matches(BearerOf(http.Request)))
            {
                await next(http);
                return;
            }
            if (sessions.IsValid(http.Request.Cookies[Cookie]))
            {
                if (!ChangesState(http.Request) || FromOwnPage(http.Request))
                {
                    await next(http);
                    return;
                }
                await OpenAiErrors.Write(http, StatusCodes.Status403Forbidden,
                    "a request that changes something with the GUI's session cookie must come from this server's own page "
                    + "(Sec-Fetch-Site: same-origin or a matching Origin); other clients send 'Authorization: Bearer <key>'");
                return;
            }
            bool given = http.Request.Headers.Authorization.Count > 0;
            http.Response.Headers.WWWAuthenticate = "Bearer";
            await OpenAiErrors.Write(http, StatusCodes.Status401Unauthorized,
                given ? "the API key is not valid for this server" : "this server needs an API key: send 'Authorization: Bearer <key>'",
                code: given ? "invalid_api_key" : null);
        });
    }

    /// <summary>The GUI's one exchange: a valid key (checked by the middleware above) gets the session cookie.</summary>
    public static void MapSession(this WebApplication app, AccessOptions access)
    {
        app.MapPost("/v1/session", (HttpContext http, SessionTokens sessions) =>
        {
            if (access.Key is not null)
                http.Response.Cookies.Append(Cookie, sessions.Issue(),
                    new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/", Secure = http.Request.IsHttps, MaxAge = sessions.Lifetime });
            return TypedResults.NoContent();
        }).WithTags("server").WithSummary("The GUI's key check: 204 with a session cookie when the Authorization header holds the key (401 otherwise).");
    }

    static bool ChangesState(HttpRequest request) => !(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method));

    /// <summary>
    /// A browser sends the cookie with any request to this host, and SameSite ignores ports: a page served from
    /// another port of the same host is "same site" and a multipart POST needs no preflight. So a request that
    /// changes something on the cookie's word must show it comes from this origin: the browser's own
    /// <c>Sec-Fetch-Site</c> (pages cannot set it), or, from a browser without it, an <c>Origin</c> equal to this server's.
    /// </summary>
    static bool FromOwnPage(HttpRequest request)
    {
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (site.Length > 0) return site == "same-origin";
        var origin = request.Headers.Origin.ToString();
        return origin.Length > 0 && string.Equals(origin, $"{request.Scheme}://{request.Host}", StringComparison.OrdinalIgnoreCase);
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
