using Sd35.Mesh;
using Sd35.Mesh.Mpi;
using Sd35.Mesh.Tracing;
using Sd35.MpiHost;
using Sd35.Tensors.Checkpoints;
using Sd35.Tools.Faults;
using static TorchSharp.torch;

// Test host, started by the MPI tests as `mpirun -np N dotnet Sd35.MpiHost.dll <command> ...`; each process runs one
// device's rank program and writes what it computed under <out-dir> for the test to compare:
//   collectives <rows>x<cols> <out-dir>              every collective (CollectiveScenarios): rank<id>.safetensors, rank<id>.traffic.json
//   pipeline <config-id> <f32|bf16> <steps> <out-dir> [traced]  a whole generation (PipelineScenario): image.safetensors from
//                                                    the lead; traced: the loop runs traced, trace.<rank>.txt from every process
//   resident <config-id> <out-dir>                   models kept between generations (ResidentScenario): images from the lead, loads.<rank>.txt from every process
//   block <config-id> <image-tokens>                  peak memory per process for one full-width SD3.5 Large block (BlockMemory)
//   nullref                                          (no mpirun) MPICH loaded, then a null dereference: exit 0 when it stays a catchable exception
//   mismatch shape|op                                 two ranks that disagree on a collective (for SD35_MPI_CHECK=1)
// The MPI fault tests name a rank to fail in the environment (SD35_FAULT_RANK, SD35_FAULT_AT, SD35_FAULT_KIND).
FaultInjection.InstallFromEnvironment();
switch (args)
{
    case ["collectives", var meshText, var outDir]:
    {
        var dims = meshText.Split('x').Select(int.Parse).ToArray();
        var run = new MpiLauncher().Run(new MeshShape(dims[0], dims[1]), rank =>
        {
            var results = CollectiveScenarios.Run(rank);
            SafetensorsWriter.Write(Path.Combine(outDir, $"rank{rank.Id}.safetensors"), results);
            return results.Count;
        });
        foreach (var (device, traffic) in run.AllTraffic)
            TrafficFile.Write(Path.Combine(outDir, $"rank{device}.traffic.json"), traffic);
        return 0;
    }
    case ["pipeline", var id, var dtypeText, var stepsText, var outDir, .. var rest] when rest is [] or ["traced"]:
    {
        var config = ParallelConfig.Parse(id);
        using var trace = rest is ["traced"] ? new StepTrace() : null;
        using var result = PipelineScenario.Generate(config, dtypeText == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32, int.Parse(stepsText), trace);
        if (result.IsLead) SafetensorsWriter.Write(Path.Combine(outDir, "image.safetensors"), new Dictionary<string, Tensor> { ["image"] = result.Image });
        // "checked placed reused", then a line per step kind captured on this process: "kind buffers-kept".
        if (trace is not null)
            File.WriteAllLines(Path.Combine(outDir, $"trace.{MpiRuntime.WorldRank}.txt"),
                [$"{trace.CheckedSteps} {trace.ReceiveBuffersPlaced} {trace.ReceiveBuffersReused}",
                 .. trace.Captured.Select(p => $"{p.StepKind} {trace.ReceiveBufferCount(p.Rank, p.StepKind)}")]);
        return 0;
    }
    case ["resident", var id, var outDir]:
    {
        var config = ParallelConfig.Parse(id);
        using var outcome = ResidentScenario.Run(config, Sd35.Pipeline.ModelResidency.Resident);
        if (outcome.IsLead)
            SafetensorsWriter.Write(Path.Combine(outDir, "images.safetensors"), new Dictionary<string, Tensor> { ["first"] = outcome.First, ["last"] = outcome.Last });
        File.WriteAllText(Path.Combine(outDir, $"loads.{MpiRuntime.WorldRank}.txt"), $"{outcome.FirstLoads} {outcome.LastLoads} {outcome.CancelledAfter} {outcome.NonFiniteAt}");
        return 0;
    }
    case ["block", var id, var tokensText]:
    {
        // Memory per process for one full-width SD3.5 Large joint block: each rank builds only its shards.
        var config = ParallelConfig.Parse(id);
        var run = new MpiLauncher(mpi: new MpiRunOptions { Config = config }).Run(config.Mesh, rank => BlockMemory.Measure(rank, config, int.Parse(tokensText)));
        if (run.Local.TryGetValue(0, out var table)) Console.WriteLine(table);
        return 0;
    }
    case ["nullref"]:
    {
        // Without mpirun: load MPICH as the MPI tests' hosts do, then dereference null. The exception must stay catchable.
        if (!MpiRuntime.IsLibraryAvailable) return 3;
        try
        {
            string? nothing = args.Length > 5 ? "" : null;
            return nothing!.Length;
        }
        catch (NullReferenceException)
        {
            Console.WriteLine("caught NullReferenceException");
            return 0;
        }
    }
    case ["mismatch", var kind]:
    {
        // Ranks that disagree on purpose (run with SD35_MPI_CHECK=1): "shape" — AllGather of [2, 3] against [2, 4];
        // "op" — rank 0 makes an AllReduce while the others make an AllGather.
        new MpiLauncher().Run(new MeshShape(1, 2), rank =>
        {
            var g = rank.Axis(1);
            using var local = zeros(2, kind == "shape" ? 3 + rank.Id.Value : 3);
            using var result = kind == "op" && rank.Id == 0 ? g.AllReduce(local) : g.AllGather(local, 0);
            return 0;
        });
        return 0;
    }
    default:
        Console.Error.WriteLine("usage: Sd35.MpiHost collectives <rows>x<cols> <out-dir> | pipeline <config-id> <f32|bf16> <steps> <out-dir>");
        return 2;
}
