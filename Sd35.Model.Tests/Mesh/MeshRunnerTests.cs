using System.Diagnostics;
using FluentAssertions;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using static Sd35.Tests.Mesh.MeshTestTensors;
using static TorchSharp.torch;

namespace Sd35.Tests.Mesh;

/// <summary>The runner: results in mesh order, thread settings, and failing fast with the original exception.</summary>
[Collection(MeshRunCollection.Name)]
public class MeshRunnerTests
{
    /// <summary>Long enough that passing through the timeout path would fail the speed assertions.</summary>
    static readonly MeshRunOptions Patient = new() { CollectiveTimeout = TimeSpan.FromSeconds(60) };

    static readonly TimeSpan Fast = TimeSpan.FromSeconds(5);

    [Fact]
    public void Results_come_back_in_mesh_order_and_each_rank_runs_on_its_own_thread()
    {
        var mesh = DeviceMesh.Create(2, 4).Split(1, 2)[1];
        var results = MeshRunner.Run(mesh, rank => (Id: rank.Id.Value, rank.Coord, Environment.CurrentManagedThreadId));
        results.Select(r => r.Id).Should().Equal(2, 3, 6, 7);
        results[3].Coord.Should().Be(new MeshCoord(1, 1));
        results.Select(r => r.CurrentManagedThreadId).Should().OnlyHaveUniqueItems();
    }

    [Fact]
    public void A_one_device_mesh_runs_inline_on_the_calling_thread_through_the_launcher_seam()
    {
        IMeshLauncher launcher = MeshLaunchers.InProcess();
        var run = launcher.Run(new MeshShape(1, 1), rank => (rank.Id.Value, rank.Device.type, Environment.CurrentManagedThreadId));
        run.Local.Keys.Should().Equal(0);
        run.Local[0].Should().Be((0, TorchSharp.DeviceType.CPU, Environment.CurrentManagedThreadId));
    }

    [Fact]
    public void Cuda_ranks_are_bound_round_robin_or_refused_naming_why()
    {
        if (TorchSharp.torch.cuda.is_available())
        {
            var bind = DeviceBinding.For(ComputeDevice.Cuda);
            bind(0).Should().Be(new TorchSharp.torch.Device(TorchSharp.DeviceType.CUDA, 0));
            bind(TorchSharp.torch.cuda.device_count()).index.Should().Be(0);
            return;
        }
        var act = () => MeshLaunchers.InProcess(ComputeDevice.Cuda);
        act.Should().Throw<Sd35.Errors.RequestException>().Where(e => e.Field == "device").WithMessage("*CUDA*not available*");
    }

    [Fact]
    public void Intra_op_threads_are_set_for_the_run_and_restored_after()
    {
        int before = get_num_threads();
        var inside = MeshRunner.Run(DeviceMesh.Create(1, 2), _ => get_num_threads(), new MeshRunOptions { IntraOpThreads = 1 });
        inside.Should().AllBeEquivalentTo(1);
        get_num_threads().Should().Be(before);
    }

    [Fact]
    public void One_device_inline_sets_the_threads_too_so_it_computes_as_one_mpi_process_does()
    {
        // Whatever the host had, the inline run computes with the rule's count (the MPI launcher's for -np 1) and restores it.
        int before = get_num_threads();
        var inside = MeshRunner.Run(DeviceMesh.Create(1, 1), _ => get_num_threads());
        inside.Should().Equal(IntraOpThreads.PerRank(1, Environment.ProcessorCount));
        var given = MeshRunner.Run(DeviceMesh.Create(1, 1), _ => get_num_threads(), new MeshRunOptions { IntraOpThreads = before + 1 });
        given.Should().Equal(before + 1);
        get_num_threads().Should().Be(before);
    }

    [Theory]
    [InlineData(1, 2, 2)]   // one device: every core
    [InlineData(2, 2, 1)]
    [InlineData(4, 2, 1)]   // more ranks than cores: still one thread each
    [InlineData(2, 3, 2)]   // ⌈3 / 2⌉: no core left idle
    [InlineData(3, 8, 3)]
    [InlineData(0, 8, 8)]   // no count from the launcher's environment: as one rank
    public void The_one_rule_shares_the_cores_among_the_ranks_of_a_host(int ranks, int cores, int expected) =>
        IntraOpThreads.PerRank(ranks, cores).Should().Be(expected);

    static (Exception Error, TimeSpan Elapsed) Failing(DeviceMesh mesh, Action<MeshRank> program, MeshRunOptions? options = null)
    {
        var clock = Stopwatch.StartNew();
        var act = () => MeshRunner.Run(mesh, rank => { program(rank); return 0; }, options ?? Patient);
        var error = act.Should().Throw<Exception>().Which;
        return (error, clock.Elapsed);
    }

    [Fact]
    public void A_rank_that_throws_before_a_collective_fails_the_step_fast_with_its_own_exception()
    {
        var (error, elapsed) = Failing(DeviceMesh.Create(2, 4), rank =>
        {
            if (rank.Id.Value == 6) throw new InvalidOperationException("rank 6 broke");
            rank.Axis(1).AllGather(Seeded(rank.Id.Value, 3), 0);
            rank.Axis(0).AllReduce(Seeded(rank.Id.Value, 3));
        });
        error.Should().BeOfType<InvalidOperationException>().Which.Message.Should().Be("rank 6 broke");
        error.Data["MeshRank"].Should().Be(6);
        elapsed.Should().BeLessThan(Fast);
    }

    [Fact]
    public void A_rank_that_throws_mid_step_releases_the_ranks_blocked_in_collectives()
    {
        var (error, elapsed) = Failing(DeviceMesh.Create(2, 4), rank =>
        {
            var g = rank.Axis(1);
            for (int step = 0; step < 10; step++)
            {
                if (rank.Id.Value == 1 && step == 3) throw new ArithmeticException("diverged at step 3");
                g.AllReduce(Seeded(rank.Id.Value, 16)).Dispose();
                rank.Axis(0).RingShift(Seeded(rank.Id.Value, 4)).Dispose();
            }
        });
        error.Should().BeOfType<ArithmeticException>().Which.Message.Should().Be("diverged at step 3");
        elapsed.Should().BeLessThan(Fast);
    }

    [Fact]
    public void A_rank_that_throws_is_described_with_its_rank_and_the_collective_the_others_waited_in()
    {
        var (error, _) = Failing(DeviceMesh.Create(1, 2), rank =>
        {
            if (rank.Id.Value == 1) throw new InvalidOperationException("boom");
            rank.Axis(1).AllGather(Seeded(0, 2), 0);
        });
        MeshFailure.Describe(error).Should().Be(
            "mesh rank 1 failed while the other ranks waited in AllGather(dim 0) #0 on group 'axis1' [devices 0,1]: InvalidOperationException: boom");
    }

    [Fact]
    public void A_timeout_is_described_with_the_rank_that_waited_and_the_collective()
    {
        var (error, _) = Failing(DeviceMesh.Create(1, 2), rank =>
        {
            if (rank.Id.Value == 1) Thread.Sleep(1500);
            rank.Axis(1).AllReduce(Seeded(rank.Id.Value, 2)).Dispose();
        }, new MeshRunOptions { CollectiveTimeout = TimeSpan.FromMilliseconds(300) });
        MeshFailure.Describe(error).Should().StartWith("mesh rank 0 failed: CollectiveTimeoutException: AllReduce(reduce) #0 on group 'axis1'")
            .And.Contain("waiting for rank 1 (device 1)");
    }

    [Fact]
    public void Ranks_blocked_by_a_failure_see_an_aborted_collective_that_names_the_cause()
    {
        CollectiveAbortedException? seen = null;
        Failing(DeviceMesh.Create(1, 2), rank =>
        {
            if (rank.Id.Value == 1) throw new InvalidOperationException("boom");
            try { rank.Axis(1).AllGather(Seeded(0, 2), 0); }
            catch (CollectiveAbortedException e) { seen = e; throw; }
        });
        seen.Should().NotBeNull();
        seen!.Message.Should().Be("AllGather(dim 0) #0 on group 'axis1' [devices 0,1] aborted: the run failed with InvalidOperationException: boom");
        seen.InnerException.Should().BeOfType<InvalidOperationException>();
    }

    [Fact]
    public void A_rank_that_skips_a_collective_is_reported_when_it_finishes_not_after_the_timeout()
    {
        var (error, elapsed) = Failing(DeviceMesh.Create(1, 2), rank =>
        {
            var g = rank.Axis(1);
            g.AllReduce(Seeded(rank.Id.Value, 2)).Dispose();
            if (rank.Id.Value == 0) g.AllGather(Seeded(rank.Id.Value, 2), 0).Dispose();
        });
        error.Should().BeOfType<CollectiveMismatchException>().Which.Message.Should()
            .Be("AllGather(dim 0) #2 on group 'axis1' [devices 0,1]: rank 1 (device 1) finished its program without taking part (missing or extra collective call?)");
        elapsed.Should().BeLessThan(Fast);
    }

    [Fact]
    public void Ranks_that_make_different_calls_are_told_which()
    {
        var (error, _) = Failing(DeviceMesh.Create(1, 2), rank =>
        {
            var g = rank.Axis(1);
            if (rank.Id.Value == 0) g.AllGather(Seeded(rank.Id.Value, 2), 0).Dispose();
            else g.AllReduce(Seeded(rank.Id.Value, 2)).Dispose();
        });
        error.Should().BeOfType<CollectiveMismatchException>().Which.Message.Should()
            .Be("AllGather(dim 0) #0 on group 'axis1' [devices 0,1]: ranks disagree on the call: rank 0 (device 0) made AllGather(dim 0), rank 1 (device 1) made AllReduce(reduce)");
    }

    [Fact]
    public void Mismatched_shapes_in_a_reduction_are_reported()
    {
        var (error, _) = Failing(DeviceMesh.Create(1, 2), rank =>
            rank.Axis(1).ReduceScatter(Seeded(rank.Id.Value, 2, 2 + 2 * rank.Id.Value), 1).Dispose());
        error.Should().BeOfType<CollectiveMismatchException>().Which.Message.Should()
            .EndWith("ReduceScatter(dim 1) #0 on group 'axis1' [devices 0,1]: shapes differ: [2, 2] vs [2, 4]");
    }

    [Fact]
    public void An_inconsistent_exchange_pattern_is_reported()
    {
        var (error, _) = Failing(DeviceMesh.Create(1, 4), rank =>
            rank.Axis(1).SendReceive(Seeded(rank.Id.Value, 2), (rank.Id.Value + 1) % 4, (rank.Id.Value + 2) % 4).Dispose());
        error.Should().BeOfType<CollectiveMismatchException>().Which.Message.Should()
            .Be("SendReceive #0 on group 'axis1' [devices 0,1,2,3]: rank 0 sends to rank 1, but rank 1 receives from rank 3");
    }

    [Fact]
    public void The_timeout_names_the_collective_and_the_ranks_it_waited_for()
    {
        var (error, elapsed) = Failing(DeviceMesh.Create(1, 2), rank =>
        {
            if (rank.Id.Value == 1) Thread.Sleep(1500);
            rank.Axis(1).AllReduce(Seeded(rank.Id.Value, 2)).Dispose();
        }, new MeshRunOptions { CollectiveTimeout = TimeSpan.FromMilliseconds(300) });
        error.Should().BeOfType<CollectiveTimeoutException>().Which.Message.Should()
            .Be("AllReduce(reduce) #0 on group 'axis1' [devices 0,1]: timed out after 0.3 s waiting for rank 1 (device 1) to deposit; ready: rank 0 (device 0)");
        elapsed.Should().BeLessThan(Fast);
    }

    [Fact]
    public void The_abort_token_lets_a_collective_free_loop_stop_early()
    {
        var (error, elapsed) = Failing(DeviceMesh.Create(1, 2), rank =>
        {
            if (rank.Id.Value == 0) throw new InvalidOperationException("stop");
            while (!rank.Aborted.IsCancellationRequested) Thread.Sleep(10);
        });
        error.Message.Should().Be("stop");
        elapsed.Should().BeLessThan(Fast);
    }
}
