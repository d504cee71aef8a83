using Sd35.Mesh;
using Sd35.Mesh.Mpi;
using Sd35.MpiHost;
using Sd35.Tensors.Checkpoints;

// Test host, started by the MPI tests as `mpirun -np N dotnet Sd35.MpiHost.dll <command> ...`; each process runs
// one device's rank program and writes what it computed to <out>/rank<id>.* for the test to compare.
//   collectives <rows>x<cols> <out>   every collective (CollectiveScenarios) on that mesh
if (args.Length < 3 || args[0] != "collectives")
{
    Console.Error.WriteLine("usage: Sd35.MpiHost collectives <rows>x<cols> <out-dir>");
    return 2;
}
var dims = args[1].Split('x').Select(int.Parse).ToArray();
string outDir = args[2];
var run = new MpiLauncher().Run(new MeshShape(dims[0], dims[1]), rank =>
{
    var results = CollectiveScenarios.Run(rank);
    SafetensorsWriter.Write(Path.Combine(outDir, $"rank{rank.Id}.safetensors"), results);
    return results.Count;
});
foreach (var (device, traffic) in run.AllTraffic)
    TrafficFile.Write(Path.Combine(outDir, $"rank{device}.traffic.json"), traffic);
return 0;
