namespace Sd35.Pipeline;

/// <summary>An 8-bit RGB image, rows top to bottom, 3 bytes per pixel (R, G, B).</summary>
public sealed record RgbImage(int Width, int Height, byte[] Pixels)
{
    public (byte R, byte G, byte B) this[int x, int y]
    {
        get
        {
            int i = (y * Width + x) * 3;
            return (Pixels[i], Pixels[i + 1], Pixels[i + 2]);
        }
    }
}
