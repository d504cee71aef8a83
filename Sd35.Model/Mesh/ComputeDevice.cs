using Sd35.Errors;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Mesh;

/// <summary>The kind of TorchSharp device a run binds its ranks to.</summary>
public enum ComputeDevice
{
    Cpu,
    /// <summary>CUDA devices, round-robin: rank i on GPU i mod device_count (several ranks may share a GPU).</summary>
    Cuda,
    /// <summary>
    /// Shapes only: every rank on the <c>meta</c> device, no data and no weights (the cost model's dry run walks the
    /// whole pipeline at full size this way).
    /// </summary>
    Meta,
}

/// <summary>Binds logical devices (ranks) to TorchSharp devices, once per run; asking for CUDA without it is an error, never a silent CPU run.</summary>
public static class DeviceBinding
{
    /// <summary>The TorchSharp device of each rank id; throws <see cref="RequestException"/> (field <c>device</c>) when CUDA is asked for but unavailable.</summary>
    public static Func<DeviceId, Device> For(ComputeDevice kind)
    {
        if (kind == ComputeDevice.Cpu) return _ => CPU;
        if (kind == ComputeDevice.Meta) return _ => Sd35.Profiling.ShapeOnly.Device;
        if (!cuda.is_available()) throw new RequestException("device", $"CUDA was asked for, but it is not available: {WhyNoCuda()}");
        int count = cuda.device_count();
        return id => new Device(DeviceType.CUDA, id.Value % count);
    }

    static string WhyNoCuda() =>
        HasCudaLibTorch()
            ? "no GPU is visible to libtorch (check the NVIDIA driver and CUDA_VISIBLE_DEVICES)"
            : $"only the CPU libtorch is loaded (TorchSharp-cpu has no CUDA kernels; a CUDA run needs a CUDA libtorch: set {Sd35.Tensors.LibTorchRuntime.EnvironmentVariable} to its lib folder, e.g. a PyTorch install's torch/lib)";

    /// <summary>TorchSharp's CUDA packages ship libtorch_cuda next to libtorch_cpu; the CPU package does not.</summary>
    static bool HasCudaLibTorch()
    {
        try
        {
            if (Sd35.Tensors.LibTorchRuntime.RequestedDirectory is { } existing && File.Exists(Path.Combine(existing, "libtorch_cuda.so"))) return true;
            return Directory.EnumerateFiles(AppContext.BaseDirectory, "*torch_cuda*", SearchOption.AllDirectories).Any();
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
