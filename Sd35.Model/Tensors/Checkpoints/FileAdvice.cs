using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// Linux's <c>posix_fadvise</c> for checkpoint files (.NET exposes it only as the fixed hints of
/// <see cref="FileOptions"/>). <see cref="WillNeed"/> starts the reading of a range in the background, in large requests,
/// so the disk keeps working while the loader copies the previous tensor into place; <see cref="Evict"/> drops one file's
/// pages from the page cache, so a load or read can be timed uncached without dropping every other user's cache (and
/// without root). Advice only: where it is not available (not Linux) both do nothing, and reading stays correct.
/// </summary>
public static partial class FileAdvice
{
    const int WillNeedAdvice = 3, DontNeedAdvice = 4; // POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED on Linux

    /// <summary>Asks the kernel to read <paramref name="length"/> bytes at <paramref name="offset"/> ahead, without waiting.</summary>
    public static void WillNeed(SafeFileHandle handle, long offset, long length)
    {
        if (!OperatingSystem.IsLinux() || length <= 0) return;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            _ = PosixFadvise((int)handle.DangerousGetHandle(), offset, length, WillNeedAdvice);
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>Drops <paramref name="path"/>'s clean pages from the page cache (written data is flushed first).</summary>
    /// <returns>false where the advice is not available</returns>
    public static bool Evict(string path)
    {
        if (!OperatingSystem.IsLinux()) return false;
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Flush(flushToDisk: true);
        return PosixFadvise((int)stream.SafeFileHandle.DangerousGetHandle(), 0, 0, DontNeedAdvice) == 0;
    }

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int PosixFadvise(int fd, long offset, long length, int advice);
}
