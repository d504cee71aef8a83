using Sd35.Demo;
using Sd35.Mesh.Mpi;
using Sd35.Tensors;

// An existing libtorch (SD35_LIBTORCH_DIR or -p:Sd35LibTorchDir) must be loaded before anything touches TorchSharp.
LibTorchRuntime.Select();

// Under mpirun every process runs this; only world rank 0 (the lead device's process) talks to the user.
bool speaks = MpiRuntime.LaunchedRank() is not { Rank: > 0 };
var (output, error) = speaks ? (Console.Out, Console.Error) : (TextWriter.Null, TextWriter.Null);

// oneMKL's AVX-512 kernels on non-Intel CPUs (see Sd35.Perf/README.md; SD35_MKL_AVX512=0 turns it off). The memory
// switches stay off here: the staged pipeline wants freed weights returned to the system between stages.
try
{
    CpuRuntime.Configure(new CpuRuntimeOptions { HugePageAllocations = false, RetainFreedMemory = false });
}
catch (Exception e)
{
    return DemoApp.Report(e, error);
}
return DemoApp.Run(args, output, error);
