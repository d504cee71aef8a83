using Sd35.Errors;
using Sd35.Mesh.Mpi;
using Sd35.Server.Hosting;

// The process set-up (libtorch from SD35_LIBTORCH_DIR, the CPU runtime as the demo has it, NNPACK off) happens when the
// pipeline is built (Sd35.Hosting.PipelineFactory, from PipelineAdapter at start-up), before the first tensor.
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(ServerOptions.Usage + Environment.NewLine + AccessOptions.Usage);
    return 0;
}
// Under mpirun every process runs this; world rank 0 serves HTTP, the others run its jobs with it.
bool worker = MpiRuntime.LaunchedRank() is { Rank: > 0 };
try
{
    if (worker) return MpiWorker.Run(args);
    using var app = ServerApp.Build(args);
    app.Run();
    return 0;
}
catch (Exception e) when (e is InputException or ArgumentException or IOException or InvalidDataException)
{
    if (!worker) Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

/// <summary>The entry point, public so that tests can host the app in process (WebApplicationFactory).</summary>
public partial class Program;
