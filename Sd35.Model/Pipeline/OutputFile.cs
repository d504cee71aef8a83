using Sd35.Errors;

namespace Sd35.Pipeline;

/// <summary>Proves, before any work, that an output file can be written where the user asked.</summary>
public static class OutputFile
{
    /// <summary>
    /// Creates and removes a probe file beside <paramref name="path"/>, the same way the image will later be written
    /// (a temporary name in the same folder, then a rename), so a read-only folder, a path under /sys, a missing
    /// folder or a path that names a directory fails now with <see cref="RequestException"/> for <paramref name="field"/>
    /// (<c>out</c> unless another output is meant), naming the user's path and not the probe's.
    /// </summary>
    public static void EnsureWritable(string path, string field = "out")
    {
        string full;
        try { full = Path.GetFullPath(path); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new RequestException(field, $"'{path}' is not a valid path: {e.Message}");
        }
        if (Directory.Exists(full)) throw new RequestException(field, $"'{path}' is a directory; name a file");
        var directory = Path.GetDirectoryName(full);
        if (directory is null || !Directory.Exists(directory))
            throw new RequestException(field, $"'{path}': folder '{directory}' does not exist");
        var probe = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.probe");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RequestException(field, $"'{path}' cannot be written: {e.Message.Replace(probe, directory)}");
        }
        finally
        {
            if (File.Exists(probe)) File.Delete(probe);
        }
    }
}
