using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Profiling;

/// <summary>
/// What changes when a run is shape-only (every rank on the <c>meta</c> device, as the cost model's dry run): tensors
/// have shapes and dtypes but no data, so nothing can be copied to the host. Small host-side metadata that must
/// arrive as data (the shape header of <c>BroadcastFromRoot</c>) stays on the CPU. Preflight, the weight accounting of
/// <c>mesh-memory</c> and the synthetic model writer build their models on <see cref="Device"/> for the same reason.
/// </summary>
public static class ShapeOnly
{
    /// <summary>The meta device: a model built on it holds shapes only (no memory, no weights read).</summary>
    public static readonly Device Device = new(DeviceType.META);

    public static bool Is(Device device) => device.type == DeviceType.META;

    public static bool Is(Tensor tensor) => tensor.device_type == DeviceType.META;

    /// <summary>A CPU copy of <paramref name="tensor"/>; in a shape-only run, an alias of the tensor itself (there is no data to copy).</summary>
    public static Tensor ToHost(Tensor tensor) => Is(tensor) ? tensor.alias() : tensor.cpu();

    /// <summary>Where host metadata for a rank on <paramref name="device"/> lives: its device, or the CPU in a shape-only run.</summary>
    public static Device MetadataDevice(Device device) => Is(device) ? CPU : device;
}
