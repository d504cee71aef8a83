using Sd35.Demo;
using Sd35.Mesh.Mpi;

// Under mpirun every process runs this; only world rank 0 (the lead device's process) talks to the user.
// The process set-up (libtorch from SD35_LIBTORCH_DIR, the CPU runtime, NNPACK) happens when the pipeline is built
// (Sd35.Hosting.PipelineFactory), before the first tensor.
bool speaks = MpiRuntime.LaunchedRank() is not { Rank: > 0 };
var (output, error) = speaks ? (Console.Out, Console.Error) : (TextWriter.Null, TextWriter.Null);
return DemoApp.Run(args, output, error);
