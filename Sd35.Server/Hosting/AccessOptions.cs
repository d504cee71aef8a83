using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Configuration;

namespace Sd35.Server.Hosting;

/// <summary>
/// Who may use the server and how much of it: the API key, the connection and event-stream limits, the upload limit
/// and the log format. Read once at start-up like <see cref="ServerOptions"/>; a bad value stops the server before it
/// binds a port, with a message naming the option.
/// </summary>
public sealed record AccessOptions
{
    /// <summary>The environment variable that may hold the key instead of <c>--api-key</c> (keeps it out of <c>ps</c>).</summary>
    public const string KeyVariable = "SD35_API_KEY";

    /// <summary>Null: no key; every client may call every route.</summary>
    public ApiKey? Key { get; init; }
    /// <summary>Listening beyond loopback without a key was asked for explicitly.</summary>
    public bool AllowNoKey { get; init; }
    /// <summary>Open connections one client address may hold; a request on one more is answered 429 and the connection closed.</summary>
    public int MaxConnectionsPerClient { get; init; } = 100;
    /// <summary>Server-sent-event streams open at once from one client address; one more is answered 429.</summary>
    public int MaxEventStreamsPerClient { get; init; } = 16;
    /// <summary>Server-sent-event streams open at once in all; one more is answered 503.</summary>
    public int MaxEventStreams { get; init; } = 128;
    /// <summary>The multipart body of <c>POST /v1/images/edits</c> (an image and a mask); larger is 413.</summary>
    public int MaxUploadBytes { get; init; } = 8 << 20;
    public LogFormat LogFormat { get; init; } = LogFormat.Text;

    public const string Usage = """
          --api-key <key>            require 'Authorization: Bearer <key>' on every /v1 route and /metrics (or set
                                     SD35_API_KEY); the key is never logged
          --allow-no-key             listen beyond loopback without a key (refused otherwise)
          --max-connections-per-client <n>   open connections per client address (default 100); more get 429
          --max-event-streams-per-client <n> progress streams per client address (default 16); more get 429
          --max-event-streams <n>    progress streams in all (default 128); more get 503
          --max-upload-bytes <n>     the body of POST /v1/images/edits (default 8388608)
          --log-format text|json     one line per log entry, with its request id; json: one JSON object per line
        """;

    public static AccessOptions From(IConfiguration configuration)
    {
        var defaults = new AccessOptions();
        int Int(string key, int fallback)
        {
            var text = configuration[key];
            if (text is null) return fallback;
            return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 1
                ? v : throw new ArgumentException($"--{key} must be an integer ≥ 1, got '{text}'");
        }
        var key = configuration["api-key"] ?? Environment.GetEnvironmentVariable(KeyVariable);
        if (key is not null && key.Trim().Length == 0) throw new ArgumentException($"--api-key (or {KeyVariable}) is empty");
        return new AccessOptions
        {
            Key = key is null ? null : new ApiKey(key),
            AllowNoKey = configuration["allow-no-key"] is { } allow
                && (bool.TryParse(allow, out bool a) ? a : throw new ArgumentException($"--allow-no-key takes no value or true/false, got '{allow}'")),
            MaxConnectionsPerClient = Int("max-connections-per-client", defaults.MaxConnectionsPerClient),
            MaxEventStreamsPerClient = Int("max-event-streams-per-client", defaults.MaxEventStreamsPerClient),
            MaxEventStreams = Int("max-event-streams", defaults.MaxEventStreams),
            MaxUploadBytes = Int("max-upload-bytes", defaults.MaxUploadBytes),
            LogFormat = configuration["log-format"]?.ToLowerInvariant() switch
            {
                null or "text" => LogFormat.Text,
                "json" => LogFormat.Json,
                var other => throw new ArgumentException($"--log-format must be text or json, got '{other}'"),
            },
        };
    }

    /// <summary>
    /// A server that others can reach must not be open to all by accident: listening on anything but loopback needs
    /// a key or an explicit <c>--allow-no-key</c>. <paramref name="urls"/> is ASP.NET Core's <c>urls</c> setting.
    /// </summary>
    public void CheckExposure(string? urls) => CheckExposure(urls?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? []);

    /// <summary>Every address the configuration makes Kestrel listen on: <c>urls</c> and <c>Kestrel:Endpoints:*:Url</c>.</summary>
    public void CheckExposure(IConfiguration configuration) =>
        CheckExposure((configuration["urls"]?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [])
            .Concat(configuration.GetSection("Kestrel:Endpoints").GetChildren().Select(e => e["Url"]).OfType<string>()));

    void CheckExposure(IEnumerable<string> urls)
    {
        if (Key is not null || AllowNoKey) return;
        foreach (var url in urls)
            if (!IsLoopback(url))
                throw new ArgumentException($"--urls {url} listens beyond loopback without an API key; give --api-key (or {KeyVariable}), or --allow-no-key to serve without one");
    }

    static bool IsLoopback(string url)
    {
        // Kestrel's wildcards (http://*:80, http://+:80) are not URIs; they mean every interface.
        int scheme = url.IndexOf("://", StringComparison.Ordinal);
        var rest = scheme < 0 ? url : url[(scheme + 3)..];
        var host = rest.StartsWith('[') ? rest[..(rest.IndexOf(']') + 1)] : rest.Split(':', '/')[0];
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return true;
        return IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address);
    }

    /// <summary>Flags without a value (<c>--allow-no-key</c>) become <c>--allow-no-key=true</c> for ASP.NET Core's command-line source.</summary>
    public static readonly string[] BareFlags = ["--allow-no-key"];
}

public enum LogFormat { Text, Json }

/// <summary>
/// The API key. Its text never leaves this class: <see cref="ToString"/> hides it (so no log line or record print
/// shows it) and <see cref="Matches"/> compares SHA-256 digests in constant time, so neither the time taken nor the
/// length of a wrong key tells anything about the right one.
/// </summary>
public sealed class ApiKey(string key)
{
    readonly byte[] _digest = SHA256.HashData(Encoding.UTF8.GetBytes(key));

    public bool Matches(string? candidate) =>
        candidate is not null && CryptographicOperations.FixedTimeEquals(_digest, SHA256.HashData(Encoding.UTF8.GetBytes(candidate)));

    /// <summary>A value derived from the key, for the GUI's session cookie (the key itself never goes into a cookie).</summary>
    public string SessionToken(string purpose) => Convert.ToHexString(HMACSHA256.HashData(_digest, Encoding.UTF8.GetBytes(purpose)));

    public override string ToString() => "(hidden)";
}
