using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Sd35.Server.Api.OpenAi;

namespace Sd35.Server.Hosting;

/// <summary>
/// Bounds what clients can hold open. Open connections per client address are counted where Kestrel accepts them;
/// a request on a connection beyond <see cref="AccessOptions.MaxConnectionsPerClient"/> is answered 429 and its
/// connection closed (an answer, not a silent reset, so a client can tell why). Server-sent-event streams (any
/// endpoint that produces <c>text/event-stream</c>) are counted while they are open: beyond
/// <see cref="AccessOptions.MaxEventStreamsPerClient"/> from one address 429, beyond
/// <see cref="AccessOptions.MaxEventStreams"/> in all 503. Refusals are OpenAI-shaped errors with <c>Retry-After</c>.
/// </summary>
public sealed class ConnectionLimits(AccessOptions access)
{
    readonly ConcurrentDictionary<string, int> _connections = new();
    readonly ConcurrentDictionary<string, byte> _overLimit = new();
    readonly ConcurrentDictionary<string, int> _streams = new();
    int _allStreams;

    /// <summary>Event streams open now (a metric).</summary>
    public int OpenEventStreams => Volatile.Read(ref _allStreams);

    /// <summary>Requests refused by these limits since the start, by reason (a metric).</summary>
    public ConcurrentDictionary<string, long> Refusals { get; } = new();

    /// <summary>Counts each accepted connection under its client address for as long as it is open.</summary>
    public void CountConnections(KestrelServerOptions kestrel) =>
        kestrel.ConfigureEndpointDefaults(listen => listen.Use(next => async connection =>
        {
            var client = AddressOf(connection.RemoteEndPoint);
            if (_connections.AddOrUpdate(client, 1, (_, n) => n + 1) > access.MaxConnectionsPerClient) _overLimit[connection.ConnectionId] = 0;
            try
            {
                await next(connection);
            }
            finally
            {
                _overLimit.TryRemove(connection.ConnectionId, out _);
                _connections.AddOrUpdate(client, 0, (_, n) => n - 1);
            }
        }));

    public void UseLimits(WebApplication app) => app.Use(async (http, next) =>
    {
        // In-process test hosts have no connections (and no connection id).
        if (http.Connection.Id is { } connection && _overLimit.ContainsKey(connection))
        {
            http.Response.Headers.Connection = "close";
            await Refuse(http, "connections", StatusCodes.Status429TooManyRequests,
                $"this client address already has {access.MaxConnectionsPerClient} open connections (--max-connections-per-client); reuse one or close some");
            return;
        }
        if (!IsEventStream(http.GetEndpoint()))
        {
            await next(http);
            return;
        }
        var client = AddressOf(http.Connection.RemoteIpAddress);
        int mine = _streams.AddOrUpdate(client, 1, (_, n) => n + 1);
        int all = Interlocked.Increment(ref _allStreams);
        try
        {
            if (mine > access.MaxEventStreamsPerClient)
                await Refuse(http, "event_streams_per_client", StatusCodes.Status429TooManyRequests,
                    $"this client address already has {access.MaxEventStreamsPerClient} progress streams open (--max-event-streams-per-client); close one first");
            else if (all > access.MaxEventStreams)
                await Refuse(http, "event_streams", StatusCodes.Status503ServiceUnavailable,
                    $"the server already holds {access.MaxEventStreams} progress streams (--max-event-streams); poll GET /v1/images/{{id}} or retry later");
            else
                await next(http);
        }
        finally
        {
            Interlocked.Decrement(ref _allStreams);
            _streams.AddOrUpdate(client, 0, (_, n) => n - 1);
        }
    });

    Task Refuse(HttpContext http, string reason, int status, string message)
    {
        Refusals.AddOrUpdate(reason, 1, (_, n) => n + 1);
        http.Response.Headers.RetryAfter = "1";
        return OpenAiErrors.Write(http, status, message);
    }

    static bool IsEventStream(Endpoint? endpoint) =>
        endpoint?.Metadata.GetOrderedMetadata<Microsoft.AspNetCore.Http.Metadata.IProducesResponseTypeMetadata>()
            .Any(m => m.ContentTypes.Contains("text/event-stream")) == true;

    static string AddressOf(EndPoint? endpoint) => AddressOf((endpoint as IPEndPoint)?.Address);

    /// <summary>IPv4 clients seen through an IPv6 socket count as the same address.</summary>
    static string AddressOf(IPAddress? address) =>
        address is null ? "unknown" : (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();
}
