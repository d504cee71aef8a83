using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tensors;

/// <summary>
/// Which libtorch TorchSharp runs on. By default it is the CPU libtorch that the TorchSharp-cpu package ships next
/// to the program. An existing libtorch (a PyTorch install's <c>torch/lib</c>, e.g. a CUDA build on a GPU host) is
/// chosen with the environment variable <c>SD35_LIBTORCH_DIR</c> or, at build time, <c>-p:Sd35LibTorchDir=DIR</c>
/// (which also builds against the TorchSharp package without bundled libtorch; see the README). <see cref="Select"/>
/// then loads that directory's libraries by full path before TorchSharp loads its native bridge, whose
/// dependencies resolve to the already loaded copies by their sonames.
/// </summary>
public static class LibTorchRuntime
{
    public const string EnvironmentVariable = "SD35_LIBTORCH_DIR";
    const string BuildSetting = "Sd35.LibTorchDir";
    static readonly string[] Libraries = ["libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so"];
    static readonly object Gate = new();
    static string? s_selected;

    /// <summary>The libtorch directory asked for (environment first, then the build property), or null for the packaged one.</summary>
    public static string? RequestedDirectory =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment
        : AppContext.GetData(BuildSetting) as string is { Length: > 0 } fromBuild ? fromBuild : null;

    /// <summary>Loads the requested libtorch, once per process, before any tensor exists; returns what was done.</summary>
    public static string Select()
    {
        lock (Gate)
        {
            if (s_selected is not null) return s_selected;
            var directory = RequestedDirectory;
            if (directory is null) return s_selected = "packaged libtorch (TorchSharp-cpu)";
            if (!File.Exists(Path.Combine(directory, "libtorch_cpu.so")))
                throw new DirectoryNotFoundException($"{EnvironmentVariable} / Sd35LibTorchDir '{directory}' holds no libtorch_cpu.so (expected a libtorch 'lib' folder, e.g. <site-packages>/torch/lib).");
            var loaded = new List<string>();
            foreach (var name in Libraries)
            {
                var path = Path.Combine(directory, name);
                if (!File.Exists(path)) continue; // a CPU-only build has no CUDA libraries
                NativeLibrary.Load(path);
                loaded.Add(name);
            }
            return s_selected = $"libtorch from {directory} ({string.Join(", ", loaded)})";
        }
    }

    /// <summary>
    /// One line for a program's start: the libtorch file in use and its version, TorchSharp's version and the device.
    /// Call after <see cref="Select"/> and after the device is chosen.
    /// </summary>
    public static string Describe(Device device)
    {
        var file = LoadedLibTorch();
        var version = file is null ? null : WheelVersion(Path.GetDirectoryName(file)!);
        var torchSharp = typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+')[0];
        string deviceText = device.type == DeviceType.CUDA ? $"{device} ({CudaDeviceName(device.index < 0 ? 0 : device.index)})" : device.ToString();
        return $"libtorch: {file ?? "(not loaded yet)"}, version {version ?? $"{__version__} (as packaged)"}; TorchSharp {torchSharp}; device {deviceText}";
    }

    /// <summary>The libtorch_cpu.so this process mapped, from /proc/self/maps.</summary>
    static string? LoadedLibTorch()
    {
        if (!File.Exists("/proc/self/maps")) return null;
        return File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(p => p.Length >= 6 && p[5].EndsWith("/libtorch_cpu.so", StringComparison.Ordinal)).Select(p => p[5]).FirstOrDefault();
    }

    /// <summary>A PyTorch wheel's version, from <c>torch/version.py</c> beside <c>torch/lib</c>.</summary>
    static string? WheelVersion(string libDirectory)
    {
        var versionFile = Path.Combine(libDirectory, "..", "version.py");
        if (!File.Exists(versionFile)) return null;
        var line = File.ReadLines(versionFile).FirstOrDefault(l => l.StartsWith("__version__", StringComparison.Ordinal));
        return line?.Split('=', 2)[1].Trim().Trim('\'', '"');
    }

    /// <summary>TorchSharp has no device-name call; the CUDA driver API answers it.</summary>
    static unsafe string CudaDeviceName(int index)
    {
        if (!NativeLibrary.TryLoad("libcuda.so.1", out var driver)) return "name unknown: no libcuda.so.1";
        var init = (delegate* unmanaged<uint, int>)NativeLibrary.GetExport(driver, "cuInit");
        var get = (delegate* unmanaged<int*, int, int>)NativeLibrary.GetExport(driver, "cuDeviceGet");
        var name = (delegate* unmanaged<byte*, int, int, int>)NativeLibrary.GetExport(driver, "cuDeviceGetName");
        int handle = 0;
        var buffer = stackalloc byte[256];
        if (init(0) != 0 || get(&handle, index) != 0 || name(buffer, 256, handle) != 0) return "name unknown";
        return Marshal.PtrToStringAnsi((nint)buffer) ?? "name unknown";
    }
}
