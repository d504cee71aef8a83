using FluentAssertions;
using Sd35.Tests.TestSupport;
using Sd35.Tools.Numerics;
using static TorchSharp.torch;

namespace Sd35.Tests.Parallel;

/// <summary>
/// The per-config gates fail on deliberately broken input (docs/mutation-proofs.md): a device holding another step's
/// latents, a device that reported nothing, and a bf16 mesh error fifty times bf16's own, which the reference's 0.998
/// gate lets through.
/// </summary>
public sealed class MeshGateMutationTests
{
    const int Devices = 4, Steps = 3;

    static DeviceRun Run(Func<int, int, Tensor> latents, int devices = Devices)
    {
        var steps = new Dictionary<(int, int), Tensor>();
        var images = new Dictionary<int, Tensor>();
        for (int d = 0; d < devices; d++)
        {
            for (int i = 0; i < Steps; i++) steps[(d, i)] = latents(d, i);
            images[d] = Image();
        }
        return new DeviceRun([.. Enumerable.Range(0, Steps).Select(i => latents(0, i))], steps, images, Image());
    }

    static Tensor Latents(int step) => randn([1, 16, 8, 8], generator: new Generator((ulong)(10 + step)));
    static Tensor Image() => rand([1, 3, 64, 64], generator: new Generator(99));

    [Fact]
    public void Every_device_matching_passes()
    {
        var expected = Run((_, i) => Latents(i));
        Run((_, i) => Latents(i)).CheckEveryDeviceAgainst(expected, Devices, ParallelModelTests.MeshPipelineFp32Pcc, ParallelModelTests.MeshPipelineFp32AbsRel, "control");
    }

    [Fact]
    public void A_device_other_than_the_lead_holding_the_wrong_latents_fails_naming_it()
    {
        var expected = Run((_, i) => Latents(i));
        var broken = Run((d, i) => Latents(d == 2 && i == 1 ? 0 : i));   // device 2 kept step 0's latents after step 1
        var act = () => broken.CheckEveryDeviceAgainst(expected, Devices, ParallelModelTests.MeshPipelineFp32Pcc, ParallelModelTests.MeshPipelineFp32AbsRel, "mutant");
        act.Should().Throw<QualityException>().WithMessage("*latents after step 1 on device 2*");
    }

    [Fact]
    public void A_device_that_reported_nothing_fails()
    {
        var expected = Run((_, i) => Latents(i));
        var act = () => Run((_, i) => Latents(i), devices: Devices - 1).CheckEveryDeviceAgainst(expected, Devices, ParallelModelTests.MeshPipelineFp32Pcc,
            ParallelModelTests.MeshPipelineFp32AbsRel, "mutant");
        act.Should().Throw<Exception>().WithMessage("*every device must report*");
    }

    [Fact]
    public void An_fp32_mesh_error_the_golden_bar_lets_through_fails_the_mesh_bars()
    {
        // An error 1e-5 × max |reference| (say one tp shard summed in a lower precision) is ten times inside the golden
        // bar (1e-4) but five times the measured summation-order noise of a forward pass.
        var reference = randn([2, 16, 16, 16], generator: new Generator(5));
        var broken = reference.clone();
        broken[0, 0, 0, 0] += 1e-5 * reference.abs().max().item<float>();
        AssertQuality.Fp32(reference, broken, "the golden bar lets it through");
        var act = () => AssertQuality.Close(reference, broken, ParallelModelTests.MeshFp32Pcc, ParallelModelTests.MeshFp32AbsRel, "mutant");
        act.Should().Throw<QualityException>();
    }

    [Fact]
    public void A_bf16_mesh_error_fifty_times_bf16s_own_fails_the_mesh_bar_but_not_the_reference_gate()
    {
        // bf16 against fp32 measured 1 − PCC 3.4e-5 (ParallelModelTests); fifty times that is 1.7e-3.
        var reference = randn([2, 16, 16, 16], generator: new Generator(3));
        var noise = randn([2, 16, 16, 16], generator: new Generator(4));
        var broken = reference + noise * Math.Sqrt(2 * 50 * 3.4e-5);   // 1 − PCC ≈ σ²/2 for unit-variance signal and noise σ
        var report = Quality.Compare(reference, broken);
        (1 - report.Pcc).Should().BeInRange(1e-3, 2e-3);
        AssertQuality.Close(reference, broken, ParallelModelTests.Bf16Pcc, 1, "the reference's 0.998 gate lets it through");
        var act = () => AssertQuality.Close(reference, broken, ParallelModelTests.MeshBf16Pcc, ParallelModelTests.MeshBf16AbsRel, "mutant");
        act.Should().Throw<QualityException>();
    }
}
