using System.Net;
using FluentAssertions;
using Microsoft.AspNetCore.Http;
using Sd35.Server.Hosting;

namespace Sd35.Server.Tests;

/// <summary>
/// The event-stream counts of <see cref="ConnectionLimits"/>, driven directly: requests whose streams stay open as
/// long as the test says, and refusals whose answer is still being written (a slow client), so what is counted while
/// they are in flight can be seen.
/// </summary>
public sealed class ConnectionCountTests
{
    static readonly Endpoint EventStream = new(_ => Task.CompletedTask,
        new EndpointMetadataCollection(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(string), ["text/event-stream"])), "events");

    /// <summary>A stream request from <paramref name="client"/>, held open (or its refusal held unwritten) until <paramref name="release"/>.</summary>
    static (HttpContext Http, Task Done) Open(ConnectionLimits limits, string client, Task release)
    {
        var http = new DefaultHttpContext();
        http.Connection.RemoteIpAddress = IPAddress.Parse(client);
        http.SetEndpoint(EventStream);
        http.Response.Body = new HeldStream(release);
        return (http, limits.InvokeAsync(http, _ => release));
    }

    [Fact]
    public async Task A_refused_stream_counts_against_nobody_and_addresses_are_forgotten_when_closed()
    {
        var limits = new ConnectionLimits(new AccessOptions { MaxEventStreamsPerClient = 1, MaxEventStreams = 2 });
        var release = new TaskCompletionSource();

        var first = Open(limits, "127.0.0.1", release.Task);
        // Refused (its address has its one stream), and its answer not yet written: it is not an open stream.
        var refused = Open(limits, "127.0.0.1", release.Task);
        refused.Http.Response.StatusCode.Should().Be(StatusCodes.Status429TooManyRequests);
        limits.OpenEventStreams.Should().Be(1, "a refused request holds no stream");

        var other = Open(limits, "127.0.0.2", release.Task);
        other.Http.Response.StatusCode.Should().Be(StatusCodes.Status200OK, "one stream is open of the 2 the server allows");
        limits.OpenEventStreams.Should().Be(2);
        var third = Open(limits, "127.0.0.3", release.Task);
        third.Http.Response.StatusCode.Should().Be(StatusCodes.Status503ServiceUnavailable);

        release.SetResult();
        await Task.WhenAll(first.Done, refused.Done, other.Done, third.Done);
        limits.OpenEventStreams.Should().Be(0);
        limits.TrackedAddresses.Should().Be(0, "an address with nothing open is forgotten, or the map grows with every client ever seen");
    }

    /// <summary>A response body whose writes wait for the test: a client that reads its answer slowly.</summary>
    sealed class HeldStream(Task release) : MemoryStream
    {
        public override async Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            await release;
            await base.WriteAsync(buffer, offset, count, cancellationToken);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await release;
            await base.WriteAsync(buffer, cancellationToken);
        }
    }
}
