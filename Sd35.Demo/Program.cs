using Sd35.Demo;
using Sd35.Tensors;

// oneMKL's AVX-512 kernels on non-Intel CPUs (see Sd35.Perf/README.md; SD35_MKL_AVX512=0 turns it off). The memory
// switches stay off here: the staged pipeline wants freed weights returned to the system between stages.
try
{
    CpuRuntime.Configure(new CpuRuntimeOptions { HugePageAllocations = false, RetainFreedMemory = false });
}
catch (Exception e)
{
    return DemoApp.Report(e, Console.Error);
}
return DemoApp.Run(args, Console.Out, Console.Error);
