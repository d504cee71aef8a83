using FluentAssertions;
using Sd35.Tests.TestSupport;

namespace Sd35.Tests.Mesh.Mpi;

/// <summary>
/// Failures under mpirun end the whole job promptly, with the cause printed once: a rank that throws (injected with
/// SD35_FAULT_RANK / SD35_FAULT_AT), a rank process killed with SIGKILL, ranks that disagree on a collective in the
/// debug mode (SD35_MPI_CHECK=1), and a job with the wrong number of processes. Time limits are generous bounds for
/// a loaded 2-core machine (most of each run is starting the processes); they catch hangs, not slowness.
/// </summary>
[Collection(MeshRunCollection.Name)]
public class MpiFaultTests
{
    static readonly TimeSpan Bound = TimeSpan.FromSeconds(150);

    static MpiJob.Outcome Pipeline(Dictionary<string, string> environment, string outDir) =>
        MpiJob.Run(4, "Sd35.MpiHost.dll", ["pipeline", "qb_cfg1_sp2_tp2", "f32", "3", outDir], Bound, environment);

    [MpiFact]
    public void A_rank_that_throws_ends_every_process_with_its_error_printed_once()
    {
        using var dir = new TempDirectory();
        var job = Pipeline(new() { ["SD35_FAULT_RANK"] = "3", ["SD35_FAULT_AT"] = "step:1" }, dir.Path);

        job.ExitCode.Should().NotBe(0).And.NotBe(-1, job.ToString());
        Occurrences(job.Output, "fault injected on rank 3 at step:1").Should().Be(1, job.ToString());
        Occurrences(job.Output, "InjectedFaultException").Should().Be(1, "one stack trace, not one per rank: " + job);
        File.Exists(dir.File("image.safetensors")).Should().BeFalse("no output from a failed run");
    }

    [MpiFact]
    public void A_killed_rank_process_ends_the_job()
    {
        using var dir = new TempDirectory();
        var job = Pipeline(new() { ["SD35_FAULT_RANK"] = "2", ["SD35_FAULT_AT"] = "step:1", ["SD35_FAULT_KIND"] = "kill" }, dir.Path);

        job.ExitCode.Should().NotBe(0).And.NotBe(-1, job.ToString());
        job.Output.Should().Contain("BAD TERMINATION").And.Contain("Killed (signal 9)");
        job.Output.Should().Contain("error: rank 2 on ").And.Contain("was killed by signal 9 (KILL)", "the rank wrapper names the dead rank: " + job);
        job.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(60), "the job ends soon after the kill");
        job.Output.Should().Contain("MPI job of 4 processes, one per device: rank 0: pid", "the pid-to-rank map is printed at the start");
    }

    [MpiFact]
    public void Mismatched_shapes_are_reported_with_both_ranks_shapes_in_the_debug_mode()
    {
        var job = MpiJob.Run(2, "Sd35.MpiHost.dll", ["mismatch", "shape"], Bound, new Dictionary<string, string> { ["SD35_MPI_CHECK"] = "1" });

        job.ExitCode.Should().NotBe(0).And.NotBe(-1, job.ToString());
        job.Output.Should().Contain("shapes differ outside dimension 0: rank 0: Float32 [2, 3] vs rank 1: Float32 [2, 4]");
        Occurrences(job.Output, "CollectiveMismatchException").Should().Be(1, job.ToString());
    }

    [MpiFact]
    public void Mismatched_calls_are_reported_with_both_ranks_calls_in_the_debug_mode()
    {
        var job = MpiJob.Run(2, "Sd35.MpiHost.dll", ["mismatch", "op"], Bound, new Dictionary<string, string> { ["SD35_MPI_CHECK"] = "1" });

        job.ExitCode.Should().NotBe(0).And.NotBe(-1, job.ToString());
        job.Output.Should().Contain("ranks disagree on the call: rank 0 made AllReduce() of a Float32 [2, 3] tensor, rank 1 made AllGather(dim 0) of a Float32 [2, 3] tensor");
    }

    [MpiFact]
    public void A_job_with_the_wrong_number_of_processes_is_refused_with_the_command_that_fits()
    {
        var job = MpiJob.Run(2, "Sd35.Demo.dll", ["--parallel", "qb_cfg1_sp2_tp2", "--steps", "1", "--out", Path.Combine(Path.GetTempPath(), "sd35-never.png")], Bound);

        job.ExitCode.Should().Be(2, job.ToString());
        Occurrences(job.Output, "the parallel config has 4 device(s) but the MPI launcher started 2 process(es); start one process per device: mpirun -np 4")
            .Should().Be(1, job.ToString());
    }

    static int Occurrences(string text, string what) => (text.Length - text.Replace(what, "").Length) / what.Length;
}
