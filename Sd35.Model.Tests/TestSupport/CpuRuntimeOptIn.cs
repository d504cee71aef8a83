using System.Runtime.CompilerServices;
using Sd35.Tensors;

namespace Sd35.Tests.TestSupport;

/// <summary>
/// <c>SD35_TEST_CPU_RUNTIME=1 dotnet test …</c> runs the tests under the tuned CPU runtime the benchmarks and the
/// demo use (<see cref="CpuRuntime.Configure"/>: huge-page allocations, retained heap, oneMKL's AVX-512 kernels on
/// AMD), so the goldens are checked against those kernels too. Off by default: the settings are process-wide.
/// </summary>
static class CpuRuntimeOptIn
{
#pragma warning disable CA2255 // a module initializer is the one place that runs before any test allocates a tensor
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Apply()
    {
        if (Environment.GetEnvironmentVariable("SD35_TEST_CPU_RUNTIME") == "1") Console.WriteLine(CpuRuntime.Configure());
    }
}
