using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Sd35.Tensors;

/// <summary>
/// Turns off libtorch's NNPACK convolution path, as <c>torch.backends.nnpack.set_flags(False)</c> does in Python.
/// On CPUs NNPACK does not support, libtorch tries to initialise it before every eligible convolution and prints
/// "Could not initialize NNPACK! Reason: Unsupported hardware" each time (dozens of lines over a progress bar);
/// the user switch is checked before that attempt, so with it off nothing is printed and the convolution takes
/// libtorch's other CPU path, as it does anyway where NNPACK is unavailable. TorchSharp does not expose the switch,
/// so it is called through libtorch's exported C++ symbols.
/// </summary>
static class Nnpack
{
    const string GlobalContext = "_ZN2at13globalContextEv";                     // at::globalContext()
    const string SetUserEnabled = "_ZN2at7Context20setUserEnabledNNPACKEb";      // at::Context::setUserEnabledNNPACK(bool)
    const string UserEnabled = "_ZNK2at7Context17userEnabledNNPACKEv";          // at::Context::userEnabledNNPACK() const

    /// <returns>whether the switch is now off (false where libtorch does not export it, e.g. another platform)</returns>
    public static unsafe bool Disable()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return false;
        _ = get_num_threads(); // makes TorchSharp load libtorch_cpu.so; computes nothing
        if (!NativeLibrary.TryLoad("libtorch_cpu.so", out var library)) return false;
        if (!NativeLibrary.TryGetExport(library, GlobalContext, out var context)
            || !NativeLibrary.TryGetExport(library, SetUserEnabled, out var set)
            || !NativeLibrary.TryGetExport(library, UserEnabled, out var get)) return false;
        // x86-64 System V: a member function takes `this` as its first argument; bool is one byte.
        nint self = ((delegate* unmanaged<nint>)context)();
        ((delegate* unmanaged<nint, byte, void>)set)(self, 0);
        return ((delegate* unmanaged<nint, byte>)get)(self) == 0;
    }
}
