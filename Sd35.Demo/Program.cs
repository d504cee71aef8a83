using Sd35.Demo;
using Sd35.Mesh.Mpi;
using Sd35.Tensors;

// oneMKL's AVX-512 kernels on non-Intel CPUs (see Sd35.Perf/README.md; SD35_MKL_AVX512=0 turns it off). The memory
// switches stay off here: the staged pipeline wants freed weights returned to the system between stages.
CpuRuntime.Configure(new CpuRuntimeOptions { HugePageAllocations = false, RetainFreedMemory = false });
// Under mpirun every process runs this; only world rank 0 (the lead device's process) talks to the user.
bool speaks = MpiRuntime.LaunchedRank() is not { Rank: > 0 };
try
{
    var options = DemoOptions.Parse(args);
    return new DemoRunner(speaks ? Console.Out : TextWriter.Null, speaks ? Console.Error : TextWriter.Null).Run(options);
}
catch (Exception e) when (DemoErrors.IsUserError(e))
{
    // Every process sees the same bad input; one message is enough.
    if (speaks) Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
