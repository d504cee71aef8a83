using FluentAssertions;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.MpiHost;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using static Sd35.Tests.Mesh.MeshTestTensors;

namespace Sd35.Tests.Mesh.Mpi;

/// <summary>
/// Every collective on the MPI backend (one process per device under mpirun, loopback) against the in-process
/// backend running the same program (<see cref="CollectiveScenarios"/>): every result bit-identical, fp32 and bf16,
/// along both axes and on a group that is not a mesh line, and the same byte counts per device, label and op.
/// </summary>
[Collection(MeshRunCollection.Name)]
public class MpiCollectiveTests
{
    [MpiFact]
    public void Mpi_collectives_on_a_2x4_mesh_match_the_in_process_backend_bit_for_bit_with_the_same_traffic() => Compare(2, 4);

    [MpiFact]
    public void Mpi_collectives_on_a_1x2_mesh_match_the_in_process_backend_bit_for_bit_with_the_same_traffic() => Compare(1, 2);

    static void Compare(int rows, int cols)
    {
        using var dir = new TempDirectory();
        var job = MpiJob.Run(rows * cols, "Sd35.MpiHost.dll", ["collectives", $"{rows}x{cols}", dir.Path], TimeSpan.FromMinutes(2));
        job.ExitCode.Should().Be(0, job.ToString());

        var inProcess = MeshRunner.Execute(DeviceMesh.Create(rows, cols), CollectiveScenarios.Run);
        foreach (var device in Enumerable.Range(0, rows * cols))
        {
            var expected = inProcess.Results[device];
            using var file = SafetensorsFile.Open(dir.File($"rank{device}.safetensors"));
            file.Keys.Should().BeEquivalentTo(expected.Keys, $"device {device} ran the same scenarios");
            foreach (var (key, tensor) in expected)
            {
                using var actual = file.Read(key);
                actual.ShouldBeBitEqual(tensor, $"{key} on device {device}");
            }

            var traffic = TrafficFile.Read(dir.File($"rank{device}.traffic.json"));
            var expectedTraffic = TrafficFile.Of(inProcess.AllTraffic[device]);
            traffic.Should().BeEquivalentTo(expectedTraffic, $"device {device} moves the same bytes on both backends");
        }
    }
}
