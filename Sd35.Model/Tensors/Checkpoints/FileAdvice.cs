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
        // Dirty pages are not dropped, so a file just written is flushed first: with fsync itself, because a read-only
        // FileStream's Flush(flushToDisk: true) does not reach the disk (a fresh file stayed wholly cached).
        int fd = (int)stream.SafeFileHandle.DangerousGetHandle();
        _ = Fsync(fd);
        return PosixFadvise(fd, 0, 0, DontNeedAdvice) == 0;
    }

    /// <summary>
    /// Opens <paramref name="path"/> for reading with <c>O_DIRECT</c> (reads go from the disk straight into the caller's
    /// memory, past the page cache), or returns null where that is not available. .NET has no option for it on Unix:
    /// <c>FileOptions</c> 0x20000000 ("no buffering") is accepted and dropped — strace showed such a handle opened
    /// <c>O_RDONLY|O_CLOEXEC</c>, so the loader's "direct" reads had gone through the page cache after all.
    /// </summary>
    public static SafeFileHandle? OpenDirect(string path)
    {
        if (!OperatingSystem.IsLinux() || DirectFlag() is not { } direct) return null;
        int fd = Open(path, ReadOnly | CloseOnExec | direct);
        return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
    }

    const int ReadOnly = 0, CloseOnExec = 0x80000; // O_RDONLY, O_CLOEXEC: the same on every Linux architecture

    /// <summary>O_DIRECT's value, which differs between Linux architectures; null where it is not known here.</summary>
    static int? DirectFlag() => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 or Architecture.X86 => 0x4000,
        Architecture.Arm64 or Architecture.Arm => 0x10000,
        _ => null,
    };

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int PosixFadvise(int fd, long offset, long length, int advice);
}
