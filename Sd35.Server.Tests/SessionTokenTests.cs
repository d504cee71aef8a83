using FluentAssertions;
using Sd35.Server.Hosting;

namespace Sd35.Server.Tests;

/// <summary>The GUI's session cookie values: good for their lifetime, in the process that issued them, untouched.</summary>
public sealed class SessionTokenTests
{
    sealed class Clock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 12, 6, 9, 0, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public void A_token_is_good_for_its_lifetime_in_the_process_that_issued_it()
    {
        var clock = new Clock();
        var sessions = new SessionTokens(clock, TimeSpan.FromHours(12));
        var token = sessions.Issue();
        sessions.IsValid(token).Should().BeTrue();

        new SessionTokens(clock, TimeSpan.FromHours(12)).IsValid(token).Should().BeFalse("another process (a restart, another server) has its own secret");
        sessions.IsValid(token[..^1] + (token[^1] == '0' ? '1' : '0')).Should().BeFalse("a changed MAC");
        var dot = token.IndexOf('.');
        sessions.IsValid((long.Parse(token[..dot]) + 3600) + token[dot..]).Should().BeFalse("a later issue time does not carry the same MAC");
        foreach (var junk in new[] { null, "", ".", "x.y", "-5.00", token[..dot] })
            sessions.IsValid(junk).Should().BeFalse(junk ?? "null");

        clock.Now += TimeSpan.FromHours(12) - TimeSpan.FromSeconds(1);
        sessions.IsValid(token).Should().BeTrue("still within its lifetime");
        clock.Now += TimeSpan.FromSeconds(2);
        sessions.IsValid(token).Should().BeFalse("12 hours have passed");
        sessions.IsValid(sessions.Issue()).Should().BeTrue("a new exchange gives a new token");
    }
}
