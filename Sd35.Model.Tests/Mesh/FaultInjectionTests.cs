using FluentAssertions;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.MpiHost;
using Sd35.Pipeline;
using Sd35.Tools.Faults;
using static TorchSharp.torch;

namespace Sd35.Tests.Mesh;

/// <summary>
/// Fault injection as the test programs install it, through the library's denoising hook: in this process (the test
/// host) for the in-process mesh, and from the environment for Sd35.MpiHost (whose MPI runs are MpiFaultTests).
/// </summary>
[Collection(MeshRunCollection.Name)]
public class FaultInjectionTests
{
    [Fact]
    public void An_installed_fault_ends_an_in_process_mesh_generation_with_the_failing_ranks_error()
    {
        var config = ParallelConfig.Parse("qb_cfg1_sp2_tp2");
        using (FaultInjection.Install(new FaultPlan(Device: 3, Step: 1)))
        {
            var act = () => PipelineScenario.Generate(config, ScalarType.Float32, steps: 3).Dispose();
            var error = act.Should().Throw<InjectedFaultException>().Which;
            error.Message.Should().Be("fault injected on rank 3 at step:1");
            error.Data["MeshRank"].Should().Be(3);
        }
        DenoisingHooks.BeforeStep.Should().BeNull("disposing the installation puts the previous (no) hook back");
    }

    [Fact]
    public void The_environment_names_the_rank_the_step_and_the_kind()
    {
        static FaultPlan? From(string? rank, string? at, string? kind = null) => FaultInjection.FromEnvironment(name => name switch
        {
            FaultInjection.RankVariable => rank,
            FaultInjection.PointVariable => at,
            FaultInjection.KindVariable => kind,
            _ => null,
        });

        From(null, null).Should().BeNull("no variables, no fault");
        From("3", "step:1").Should().Be(new FaultPlan(3, 1, KillsProcess: false, Origin: "SD35_FAULT_RANK=3, SD35_FAULT_AT=step:1"));
        From("2", "step:0", "kill")!.KillsProcess.Should().BeTrue();
        FluentActions.Invoking(() => From("x", "step:1")).Should().Throw<ArgumentException>().WithMessage("SD35_FAULT_RANK='x' is not a device id*");
        FluentActions.Invoking(() => From("3", "stpe:1")).Should().Throw<ArgumentException>().WithMessage("SD35_FAULT_AT='stpe:1' is not a fault point*");
        FluentActions.Invoking(() => From("3", null)).Should().Throw<ArgumentException>().WithMessage("SD35_FAULT_AT='' is not a fault point*");
        FluentActions.Invoking(() => From("3", "step:1", "segv")).Should().Throw<ArgumentException>().WithMessage("SD35_FAULT_KIND='segv' is not a fault kind*");
    }
}
