using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;
using static TorchSharp.torch;

namespace Sd35.Tensors;

/// <summary>What <see cref="CpuRuntime.Configure"/> may change; every switch can also be turned off by its environment variable.</summary>
public sealed record CpuRuntimeOptions
{
    /// <summary>
    /// libtorch allocations of 2 MiB and more on transparent huge pages (libtorch's own <c>THP_MEM_ALLOC_ENABLE</c>):
    /// one page fault per 2 MiB instead of per 4 KiB when a large temporary is touched for the first time.
    /// Off with <c>THP_MEM_ALLOC_ENABLE=0</c>.
    /// </summary>
    public bool HugePageAllocations { get; init; } = true;

    /// <summary>
    /// glibc keeps freed memory for reuse instead of unmapping every large block (no <c>mmap</c> per allocation,
    /// trim only above 2 GiB free at the top of the heap), so a forward's temporaries reuse already-mapped pages.
    /// The cost: memory freed in the middle of the heap stays with the process until <see cref="CpuRuntime.ReleaseFreeMemory"/>.
    /// Off with <c>SD35_RETAIN_FREED_MEMORY=0</c>.
    /// </summary>
    public bool RetainFreedMemory { get; init; } = true;

    /// <summary>
    /// On a non-Intel x86-64 CPU with AVX-512 (AMD Zen 4/5), let the oneMKL linked into libtorch use its AVX-512
    /// kernels: oneMKL only dispatches them on CPUs whose vendor string is Intel and otherwise runs its AVX2
    /// kernels at half the width. Off with <c>SD35_MKL_AVX512=0</c>.
    /// </summary>
    public bool MklAvx512OnAmd { get; init; } = true;
}

/// <summary>
/// Process-wide settings of the CPU runtime under TorchSharp that libtorch and the C library read only from the
/// environment or decide once, so a program calls <see cref="Configure"/> first thing, before its first tensor.
/// None of them changes what is computed, only where
/// memory comes from and which oneMKL kernels compute the same GEMMs (different summation order in the last
/// bits, as between two CPUs). Linux x86-64 only; elsewhere each switch reports itself as not applicable.
/// </summary>
public static partial class CpuRuntime
{
    const int MallocTrimThreshold = -1; // M_TRIM_THRESHOLD
    const int MallocMmapMax = -4; // M_MMAP_MAX
    const int RtldDlSyment = 1; // RTLD_DL_SYMENT
    const int RTLD_LAZY = 0x1;
    const int RTLD_NOLOAD = 0x4;
    const int PROT_READ = 0x1, PROT_WRITE = 0x2, PROT_EXEC = 0x4;

    static readonly object Gate = new();
    static string? s_report;

    /// <summary>Applies the options once per process; later calls return the first call's report.</summary>
    /// <returns>one line per switch: what was done, or why not</returns>
    public static string Configure(CpuRuntimeOptions? options = null)
    {
        lock (Gate)
        {
            if (s_report is not null) return s_report;
            options ??= new CpuRuntimeOptions();
            var report = new StringBuilder();
            bool linux = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;
            report.AppendLine($"huge-page allocations: {(linux ? EnableHugePages(options.HugePageAllocations) : "not applicable")}");
            report.AppendLine($"retain freed memory: {(linux ? RetainFreedMemory(options.RetainFreedMemory) : "not applicable")}");
            report.AppendLine($"oneMKL AVX-512 on non-Intel CPU: {(linux ? EnableMklAvx512(options.MklAvx512OnAmd) : "not applicable")}");
            s_report = report.ToString().TrimEnd();
            return s_report;
        }
    }

    /// <summary>Returns the free pages of the C heap to the operating system (glibc <c>malloc_trim</c>), e.g. after a pipeline stage released its weights.</summary>
    public static void ReleaseFreeMemory()
    {
        if (OperatingSystem.IsLinux()) MallocTrim(0);
    }

    static bool Disabled(string variable) => Environment.GetEnvironmentVariable(variable) is "0" or "false" or "off";

    static string EnableHugePages(bool wanted)
    {
        if (!wanted || Disabled("THP_MEM_ALLOC_ENABLE")) return "off";
        const string setting = "/sys/kernel/mm/transparent_hugepage/enabled";
        if (File.Exists(setting) && File.ReadAllText(setting).Contains("[never]")) return "off (transparent huge pages are disabled in the kernel)";
        // libtorch reads THP_MEM_ALLOC_ENABLE with getenv once, at its first allocation; .NET's own environment
        // block is not the C library's, so the variable is set with setenv.
        SetEnv("THP_MEM_ALLOC_ENABLE", "1", 1);
        return "on (THP_MEM_ALLOC_ENABLE=1)";
    }

    static string RetainFreedMemory(bool wanted)
    {
        if (!wanted || Disabled("SD35_RETAIN_FREED_MEMORY")) return "off";
        bool ok = MallOpt(MallocMmapMax, 0) == 1 & MallOpt(MallocTrimThreshold, int.MaxValue) == 1;
        return ok ? "on (M_MMAP_MAX=0, M_TRIM_THRESHOLD=2 GiB)" : "failed (mallopt refused)";
    }

    static string EnableMklAvx512(bool wanted)
    {
        if (!wanted || Disabled("SD35_MKL_AVX512")) return "off";
        if (IsIntel()) return "not needed (Intel CPU)";
        if (!(Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512CD.IsSupported && Avx512F.VL.IsSupported))
            return "not applicable (no AVX-512F/BW/DQ/CD/VL)";

        _ = get_num_threads(); // makes TorchSharp load libtorch_cpu.so; computes nothing
        nint library = DlOpen("libtorch_cpu.so", RTLD_LAZY | RTLD_NOLOAD);
        if (library == 0) return "not applicable (libtorch_cpu.so is not loaded)";
        // oneMKL asks this function whether the CPU is a genuine Intel one before it dispatches its AVX-512 code
        // paths (and caches the answer). Making it answer yes is the in-process form of the well-known
        // LD_PRELOAD shim; the kernels then pick their ISA from the CPUID feature bits checked above.
        nint function = DlSym(library, "mkl_serv_intel_cpu_true");
        if (function == 0) return "not applicable (libtorch_cpu.so has no oneMKL vendor check)";
        ReadOnlySpan<byte> returnOne = [0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3]; // mov eax, 1; ret
        if (SymbolSize(function) < returnOne.Length) return "not applicable (unexpected oneMKL vendor check)";
        long pageSize = Environment.SystemPageSize;
        nint page = (nint)((long)function & ~(pageSize - 1));
        nuint length = (nuint)(((long)function + returnOne.Length - (long)page + pageSize - 1) / pageSize * pageSize);
        if (MProtect(page, length, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) return "failed (code page not writable)";
        unsafe
        {
            returnOne.CopyTo(new Span<byte>((void*)function, returnOne.Length));
        }
        MProtect(page, length, PROT_READ | PROT_EXEC);
        return "on (oneMKL dispatches its AVX-512 kernels)";
    }

    /// <summary>The ELF symbol size of the function at <paramref name="address"/> (0 if unknown), so the patch never writes past it.</summary>
    static unsafe long SymbolSize(nint address)
    {
        var info = stackalloc nint[4]; // Dl_info: dli_fname, dli_fbase, dli_sname, dli_saddr
        nint symbol = 0;
        if (DlAddr1(address, info, &symbol, RtldDlSyment) == 0 || symbol == 0 || info[3] != address) return 0;
        return *(long*)(symbol + 16); // Elf64_Sym.st_size
    }

    static bool IsIntel()
    {
        if (!X86Base.IsSupported) return false;
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<int> vendor = [ebx, edx, ecx];
        return Encoding.ASCII.GetString(MemoryMarshal.AsBytes(vendor)) == "GenuineIntel";
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int param, int value);

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    [LibraryImport("libc", EntryPoint = "dlopen", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint DlOpen(string file, int mode);

    [LibraryImport("libc", EntryPoint = "dlsym", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint DlSym(nint handle, string name);

    [LibraryImport("libc", EntryPoint = "dladdr1")]
    private static unsafe partial int DlAddr1(nint address, nint* info, nint* extraInfo, int flags);

    [LibraryImport("libc", EntryPoint = "mprotect")]
    private static partial int MProtect(nint address, nuint length, int protection);
}
