using System.Runtime.InteropServices;
using Microsoft.Extensions.Configuration;

namespace Sd35.Server.Hosting;

/// <summary>
/// A process of an MPI server other than the lead (world rank > 0): no HTTP, no queue; it builds the same pipeline
/// from the same arguments and runs the lead's jobs until the lead says stop. It stays silent, as the demo's other
/// ranks do: the lead reports everything.
/// </summary>
public static class MpiWorker
{
    public static int Run(string[] args)
    {
        // mpirun passes Ctrl-C to every process; only the lead decides when the job ends, so a worker finishes the
        // step every rank agreed on and exits when the lead's stop arrives. A TERM sent to mpirun (which hydra also
        // passes to every process) still ends a worker at once: ignored, it would leave the lead waiting in
        // MPI_Finalize for a hydra that has begun tearing the job down (seen with MPICH 4.0.2).
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => context.Cancel = true);
        var configuration = new ConfigurationBuilder().AddCommandLine(ServerOptions.NormalizeArguments(args)).Build();
        using var pipeline = new PipelineAdapter(ServerOptions.From(configuration));
        pipeline.ServeAsWorker();
        return 0;
    }
}
