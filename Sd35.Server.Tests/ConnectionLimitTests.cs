using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using FluentAssertions;

namespace Sd35.Server.Tests;

/// <summary>
/// What clients can hold open is bounded: progress streams per client address (429) and in all (503), open
/// connections per client address (429, connection closed). Different client addresses are different loopback
/// addresses (127.0.0.1, 127.0.0.2, …: all of 127/8 is loopback on Linux), chosen as the client socket's source.
/// </summary>
public sealed class ConnectionLimitTests
{
    /// <summary>An HttpClient whose connections come from <paramref name="source"/> (a loopback address).</summary>
    static HttpClient From(string source, Uri server) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.Bind(new IPEndPoint(IPAddress.Parse(source), 0));
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    }) { BaseAddress = server, Timeout = TimeSpan.FromMinutes(2) };

    static Task<HttpResponseMessage> OpenStream(HttpClient client, string id) =>
        client.GetAsync($"/v1/images/{id}/events", HttpCompletionOption.ResponseHeadersRead);

    static async Task<string> ErrorMessage(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("message").GetString()!;

    [Fact]
    public async Task Event_streams_are_limited_per_client_address_with_429_and_in_all_with_503()
    {
        await using var server = await LiveServer.StartAsync(null, "--max-event-streams-per-client", "2", "--max-event-streams", "3");
        using var hold = new StepHold(server.Queue, "held");
        var id = await server.Client.SubmitOk(new { prompt = "held", steps = 50, width = 32, height = 32 });
        await hold.WaitHeld(id);

        using var a = From("127.0.0.1", server.BaseAddress);
        using var b = From("127.0.0.2", server.BaseAddress);
        var open = new List<HttpResponseMessage>();
        try
        {
            for (int i = 0; i < 2; i++) open.Add(await OpenStream(a, id));
            open.Should().OnlyContain(r => r.StatusCode == HttpStatusCode.OK);

            var third = await OpenStream(a, id);
            third.StatusCode.Should().Be(HttpStatusCode.TooManyRequests, "a third stream from the same address");
            third.Headers.GetValues("Retry-After").Should().ContainSingle();
            (await ErrorMessage(third)).Should().Contain("--max-event-streams-per-client");

            open.Add(await OpenStream(b, id));
            open[^1].StatusCode.Should().Be(HttpStatusCode.OK, "another address has its own allowance");
            var fourth = await OpenStream(b, id);
            fourth.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, "three streams are all the server holds");
            (await ErrorMessage(fourth)).Should().Contain("--max-event-streams");

            // A closed stream frees its place.
            open[0].Dispose();
            open.RemoveAt(0);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            HttpResponseMessage again;
            while ((again = await OpenStream(a, id)).StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline) await Task.Delay(100);
            again.StatusCode.Should().Be(HttpStatusCode.OK);
            open.Add(again);
        }
        finally
        {
            foreach (var response in open) response.Dispose();
            await server.Client.DeleteAsync($"/v1/images/{id}");
        }
    }

    [Fact]
    public async Task Open_connections_are_limited_per_client_address_with_429()
    {
        const int limit = 4;
        await using var server = await LiveServer.StartAsync(null, "--max-connections-per-client", limit.ToString());
        var idle = new List<TcpClient>();
        try
        {
            for (int i = 0; i < limit; i++)
            {
                var connection = new TcpClient(new IPEndPoint(IPAddress.Parse("127.0.0.3"), 0));
                await connection.ConnectAsync(IPAddress.Loopback, server.BaseAddress.Port);
                idle.Add(connection);
            }
            using var crowded = From("127.0.0.3", server.BaseAddress);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            HttpResponseMessage refused;
            // Kestrel counts a connection once it has accepted it; the idle ones are accepted in the background.
            while ((refused = await crowded.GetAsync("/v1/health")).StatusCode == HttpStatusCode.OK && DateTime.UtcNow < deadline) await Task.Delay(100);
            refused.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
            refused.Headers.ConnectionClose.Should().BeTrue("the connection over the limit is closed");
            (await ErrorMessage(refused)).Should().Contain("--max-connections-per-client");

            using var other = From("127.0.0.4", server.BaseAddress);
            (await other.GetAsync("/v1/health")).StatusCode.Should().Be(HttpStatusCode.OK, "another address is not affected");

            foreach (var connection in idle) connection.Dispose();
            idle.Clear();
            HttpResponseMessage freed;
            while ((freed = await crowded.GetAsync("/v1/health")).StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline.AddSeconds(30)) await Task.Delay(100);
            freed.StatusCode.Should().Be(HttpStatusCode.OK, "closed connections free their places");
        }
        finally
        {
            foreach (var connection in idle) connection.Dispose();
        }
    }
}
