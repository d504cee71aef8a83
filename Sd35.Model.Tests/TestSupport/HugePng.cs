using System.Buffers.Binary;
using SkiaSharp;

namespace Sd35.Tests.TestSupport;

/// <summary>
/// A small, valid PNG whose header declares a huge size: what a decoder that allocates before it checks turns into
/// gigabytes or an overflow. Shared by the demo's and the server's tests (linked into Sd35.Server.Tests).
/// </summary>
public static class HugePng
{
    /// <summary>An 8×8 flat PNG (a few hundred bytes) whose IHDR says <paramref name="width"/>×<paramref name="height"/>.</summary>
    public static byte[] Declaring(int width, int height)
    {
        using var bitmap = new SKBitmap(8, 8, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        bitmap.Erase(SKColors.Gray);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        var png = data.ToArray();
        // Signature (8), IHDR length and type (8), then width and height; the CRC covers type and data (17 bytes).
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), width);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), height);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Crc32(png.AsSpan(12, 17)));
        return png;
    }

    /// <summary>PNG's CRC-32 (ISO 3309, reflected, polynomial 0xEDB88320).</summary>
    static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}
