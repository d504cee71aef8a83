using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Sd35.Server.Hosting;

/// <summary>
/// The values of the GUI's session cookie: the time it was issued and an HMAC of that time under a secret drawn at
/// random when the process starts. So a cookie is worth nothing to another server or after a restart, expires after
/// <see cref="Lifetime"/> however long the browser stays open, and holds nothing derived from the key.
/// </summary>
public sealed class SessionTokens(TimeProvider clock, TimeSpan lifetime)
{
    /// <summary>A working day: the GUI asks for the key again after it.</summary>
    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromHours(12);

    readonly byte[] _secret = RandomNumberGenerator.GetBytes(32);

    public TimeSpan Lifetime => lifetime;

    public string Issue()
    {
        long issued = clock.GetUtcNow().ToUnixTimeSeconds();
        return $"{issued.ToString(CultureInfo.InvariantCulture)}.{Mac(issued)}";
    }

    public bool IsValid(string? token)
    {
        int dot = token?.IndexOf('.') ?? -1;
        if (dot <= 0 || !long.TryParse(token.AsSpan(0, dot), NumberStyles.None, CultureInfo.InvariantCulture, out long issued)) return false;
        long age = clock.GetUtcNow().ToUnixTimeSeconds() - issued;
        if (age < 0 || age > (long)lifetime.TotalSeconds) return false;
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Mac(issued)), Encoding.ASCII.GetBytes(token![(dot + 1)..]));
    }

    string Mac(long issued) => Convert.ToHexString(HMACSHA256.HashData(_secret, BitConverter.GetBytes(issued)));
}
