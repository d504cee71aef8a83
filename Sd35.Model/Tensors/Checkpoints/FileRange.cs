using Microsoft.Win32.SafeHandles;
using Sd35.Errors;

namespace Sd35.Tensors.Checkpoints;

/// <summary>Reads one tensor's bytes at a file offset, whole or not at all (a file that shrank after it was opened is an error).</summary>
static class FileRange
{
    public static void Read(SafeFileHandle handle, Span<byte> span, long offset, string path, string key)
    {
        if (span.Length == 0) return;
        int read = 0;
        while (read < span.Length)
        {
            int n = RandomAccess.Read(handle, span[read..], offset + read);
            if (n == 0) throw new CheckpointException(path, key, "the data is truncated (the file shrank after it was opened?)");
            read += n;
        }
    }
}
