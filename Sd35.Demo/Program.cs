using Sd35.Demo;
using Sd35.Tensors;

// An existing libtorch (SD35_LIBTORCH_DIR or -p:Sd35LibTorchDir) must be loaded before anything touches TorchSharp.
LibTorchRuntime.Select();

// oneMKL's AVX-512 kernels on non-Intel CPUs (see Sd35.Perf/README.md; SD35_MKL_AVX512=0 turns it off). The memory
// switches stay off here: the staged pipeline wants freed weights returned to the system between stages.
CpuRuntime.Configure(new CpuRuntimeOptions { HugePageAllocations = false, RetainFreedMemory = false });
try
{
    var options = DemoOptions.Parse(args);
    return new DemoRunner(Console.Out, Console.Error).Run(options);
}
catch (Exception e) when (e is Sd35.Errors.InputException or ArgumentException or IOException or InvalidDataException or NotSupportedException or KeyNotFoundException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
