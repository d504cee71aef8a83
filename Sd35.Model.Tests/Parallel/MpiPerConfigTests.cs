using FluentAssertions;
using Sd35.Mesh;
using Sd35.MpiHost;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.Mesh;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

#pragma warning disable IDE1006 // class names carry the config id for test selection
namespace Sd35.Tests.Parallel;

/// <summary>
/// A parallel config on the MPI backend: a whole generation (<see cref="PipelineScenario"/>: tensor-parallel text
/// encoders and VAE, ring attention and tp in the transformer, the cfg exchange, skip-layer guidance) run under
/// <c>mpirun -np N</c>, one process per device on loopback, must give the in-process run's image to the bit. The
/// in-process run is what <see cref="ParallelModelTests"/> compares with one device, component by component, so
/// those comparisons hold on MPI too. Selected with <c>--filter "FullyQualifiedName~&lt;id&gt;_Mpi"</c>.
/// </summary>
[Collection(MeshRunCollection.Name)]
public abstract class MpiPipelineTests(string configId)
{
    const int Steps = 3;

    [MpiFact]
    public void Mpi_generation_is_bit_identical_to_the_in_process_run_fp32() => Compare(ScalarType.Float32);

    protected void Compare(ScalarType dtype)
    {
        var config = ParallelConfig.Parse(configId);
        using var dir = new TempDirectory();
        var job = MpiJob.Run(config.DeviceCount, "Sd35.MpiHost.dll",
            ["pipeline", configId, dtype == ScalarType.BFloat16 ? "bf16" : "f32", Steps.ToString(), dir.Path], TimeSpan.FromMinutes(5));
        job.ExitCode.Should().Be(0, job.ToString());

        using var expected = PipelineScenario.Generate(config, dtype, Steps);
        using var file = SafetensorsFile.Open(dir.File("image.safetensors"));
        using var actual = file.Read("image");
        actual.ShouldBeBitEqual(expected.Image, $"{configId} image on MPI vs in-process ({dtype})");
    }
}

public sealed class n150_cfg1_sp1_tp1_Mpi() : MpiPipelineTests("n150_cfg1_sp1_tp1");
public sealed class n300_cfg1_sp1_tp2_Mpi() : MpiPipelineTests("n300_cfg1_sp1_tp2");
public sealed class n300_cfg1_sp2_tp1_Mpi() : MpiPipelineTests("n300_cfg1_sp2_tp1");
public sealed class qb_cfg1_sp2_tp2_Mpi() : MpiPipelineTests("qb_cfg1_sp2_tp2")
{
    /// <summary>
    /// Traced on MPI: the capture places every receive buffer of the step program on every process and the checked
    /// steps receive into them again, and the image is still the untraced in-process run's to the bit.
    /// </summary>
    [MpiFact]
    public void Mpi_traced_generation_receives_into_the_captured_buffers_and_is_bit_identical()
    {
        var config = ParallelConfig.Parse("qb_cfg1_sp2_tp2");
        using var dir = new TempDirectory();
        var job = MpiJob.Run(config.DeviceCount, "Sd35.MpiHost.dll", ["pipeline", "qb_cfg1_sp2_tp2", "f32", "3", dir.Path, "traced"], TimeSpan.FromMinutes(5));
        job.ExitCode.Should().Be(0, job.ToString());

        // Skip-layer guidance applies after the first step (diffusers: i > steps·start), so of the 3 steps the first is
        // the one 'guided' step (captured) and the next two are 'guided_skip_layers' (one captured, one checked).
        for (int rank = 0; rank < config.DeviceCount; rank++)
        {
            var lines = File.ReadAllLines(dir.File($"trace.{rank}.txt"));
            var counts = lines[0].Split(' ').Select(long.Parse).ToArray();
            var (checkedSteps, placed, reused) = (counts[0], counts[1], counts[2]);
            var kept = lines.Skip(1).Select(l => l.Split(' ')).ToDictionary(p => p[0], p => long.Parse(p[1]));
            kept.Keys.Should().BeEquivalentTo(["guided", "guided_skip_layers"], $"rank {rank}");
            checkedSteps.Should().Be(1, $"rank {rank}");
            kept.Values.Should().OnlyContain(n => n > 0, $"rank {rank} receives in every step");
            placed.Should().Be(kept.Values.Sum(), $"rank {rank}: the captures placed every buffer, once");
            reused.Should().Be(kept["guided_skip_layers"], $"rank {rank}: the checked step received into every buffer its capture placed, and into nothing new");
        }
        using var expected = PipelineScenario.Generate(config, ScalarType.Float32, 3);
        using var file = SafetensorsFile.Open(dir.File("image.safetensors"));
        using var actual = file.Read("image");
        actual.ShouldBeBitEqual(expected.Image, "qb_cfg1_sp2_tp2 image, traced on MPI vs untraced in-process");
    }
}
public sealed class qb_cfg1_sp1_tp4_Mpi() : MpiPipelineTests("qb_cfg1_sp1_tp4");
public sealed class t3k_cfg2_sp1_tp4_Mpi() : MpiPipelineTests("t3k_cfg2_sp1_tp4");
public sealed class t3k_cfg1_sp2_tp4_Mpi() : MpiPipelineTests("t3k_cfg1_sp2_tp4");

public sealed class t3k_cfg2_sp2_tp2_Mpi() : MpiPipelineTests("t3k_cfg2_sp2_tp2")
{
    [MpiFact]
    public void Mpi_generation_is_bit_identical_to_the_in_process_run_bf16() => Compare(ScalarType.BFloat16);
}

/// <summary>32 processes: about a minute and several GB on the 2-core CI machine, so Slow.</summary>
[Trait("Category", "Slow")]
public sealed class tg_cfg2_sp4_tp4_Mpi() : MpiPipelineTests("tg_cfg2_sp4_tp4");
