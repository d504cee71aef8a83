using System.Runtime.InteropServices;
using FluentAssertions;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tests.Tensors.Checkpoints;

/// <summary>
/// A parameter of the stored dtype is read by O_DIRECT, past the page cache. The loader claimed this for a session
/// while .NET silently opened the file without the flag: the values were right and only the loading rate and the
/// page cache showed it. These tests look at the flag and the cache themselves. The files live beside the test
/// binaries, on a disk: /tmp may be a tmpfs, which refuses O_DIRECT.
/// </summary>
public sealed class DirectReadTests : IDisposable
{
    readonly string _directory = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "direct-read-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [DirectReadFact]
    public void OpenDirect_sets_O_DIRECT_on_the_descriptor()
    {
        var path = Path.Combine(_directory, "f.bin");
        File.WriteAllBytes(path, new byte[8192]);
        using var handle = FileAdvice.OpenDirect(path);
        handle.Should().NotBeNull();
        var flags = File.ReadLines($"/proc/self/fdinfo/{handle.DangerousGetHandle()}").Single(l => l.StartsWith("flags:", StringComparison.Ordinal));
        long value = Convert.ToInt64(flags["flags:".Length..].Trim(), 8);
        (value & DirectFlag).Should().NotBe(0, $"the descriptor's flags are {flags}");
    }

    [DirectReadFact]
    public void A_parameter_of_the_stored_dtype_is_read_without_filling_the_page_cache()
    {
        var path = Path.Combine(_directory, "m.safetensors");
        using var big = randn(1024, 2048).to(bfloat16); // 4 MiB: above the direct-read threshold
        using var small = randn(16);
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["big"] = big, ["small"] = small });
        FileAdvice.Evict(path).Should().BeTrue();

        using var parameter = empty(1024, 2048, bfloat16);
        using (var file = SafetensorsFile.Open(path)) file.ReadIntoOwned("big", parameter);

        parameter.bytes.ToArray().Should().Equal(big.bytes.ToArray(), "the directly read values are the file's");
        long cached = CachedBytes(path);
        cached.Should().BeLessThan(1L << 20, $"{cached} bytes of the file came into the page cache; a direct read leaves at most the header's pages there");
    }

    /// <summary>O_DIRECT as Linux x64 and arm64 spell it (octal 040000 and 0200000), written here from the kernel's headers, not the code under test.</summary>
    static long DirectFlag => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 0x10000 : 0x4000;

    /// <summary>How many of the file's pages are in the page cache (mincore over a read-only mapping).</summary>
    static long CachedBytes(string path)
    {
        using var stream = File.OpenRead(path);
        long length = stream.Length, page = Environment.SystemPageSize;
        var address = Mmap(0, (nuint)length, ProtRead, MapShared, (int)stream.SafeFileHandle.DangerousGetHandle(), 0);
        (address == -1).Should().BeFalse("mmap of the file");
        try
        {
            var resident = new byte[(length + page - 1) / page];
            Mincore(address, (nuint)length, resident).Should().Be(0, "mincore");
            return resident.Count(b => (b & 1) != 0) * page;
        }
        finally
        {
            _ = Munmap(address, (nuint)length);
        }
    }

    const int ProtRead = 1, MapShared = 1;

    [DllImport("libc", EntryPoint = "mmap")]
    static extern nint Mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [DllImport("libc", EntryPoint = "mincore")]
    static extern int Mincore(nint address, nuint length, byte[] vector);

    [DllImport("libc", EntryPoint = "munmap")]
    static extern int Munmap(nint address, nuint length);
}

/// <summary>Skips, with the reason, where O_DIRECT cannot be had: not Linux x64/arm64, or a filesystem beside the test binaries that refuses it.</summary>
public sealed class DirectReadFactAttribute : FactAttribute
{
    public DirectReadFactAttribute()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            Skip = "O_DIRECT reads are made on Linux x64 and arm64 only";
            return;
        }
        var probe = Path.Combine(AppContext.BaseDirectory, "direct-read-probe-" + Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(probe, new byte[4096]);
        try
        {
            using var handle = FileAdvice.OpenDirect(probe);
            if (handle is null) Skip = $"the filesystem of {AppContext.BaseDirectory} refuses O_DIRECT";
        }
        finally
        {
            File.Delete(probe);
        }
    }
}
