using FluentAssertions;
using Sd35.Mesh;
using Sd35.MpiHost;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.Mesh;
using Sd35.Tests.TestSupport;

namespace Sd35.Tests.Pipeline;

/// <summary>
/// Resident models under <c>mpirun -np 4</c> (<see cref="ResidentScenario"/>): each process keeps its own ranks'
/// models, loads nothing for a later generation, stops with the others when the lead cancels, fails a NaN generation
/// with the others without ending the job, and its images are
/// the staged in-process run's to the bit.
/// </summary>
[Collection(MeshRunCollection.Name)]
public class ResidentModelsMpiTests
{
    [MpiFact]
    public void Every_process_keeps_its_models_stops_with_the_lead_and_matches_the_staged_run()
    {
        const string id = "qb_cfg1_sp2_tp2";
        var config = ParallelConfig.Parse(id);
        using var dir = new TempDirectory();
        var job = MpiJob.Run(config.DeviceCount, "Sd35.MpiHost.dll", ["resident", id, dir.Path], TimeSpan.FromMinutes(5));
        job.ExitCode.Should().Be(0, job.ToString());

        using var expected = ResidentScenario.Run(config, ModelResidency.Staged);
        using var file = SafetensorsFile.Open(dir.File("images.safetensors"));
        using (var first = file.Read("first")) first.ShouldBeBitEqual(expected.First, $"{id}: first image, resident on MPI vs staged in-process");
        using (var last = file.Read("last")) last.ShouldBeBitEqual(expected.Last, $"{id}: image after a cancelled generation, resident on MPI vs staged in-process");
        for (int rank = 0; rank < config.DeviceCount; rank++)
        {
            var counts = File.ReadAllText(dir.File($"loads.{rank}.txt")).Split(' ').Select(int.Parse).ToArray();
            counts[0].Should().BePositive($"process {rank} loads its models for the first generation");
            counts[1].Should().Be(0, $"process {rank} keeps its models for the last generation");
            counts[2].Should().Be(1, $"process {rank} stops after the step the lead cancelled at");
            counts[3].Should().Be(1, $"process {rank} fails the NaN generation after step 1 like every other, and goes on");
        }
    }
}
