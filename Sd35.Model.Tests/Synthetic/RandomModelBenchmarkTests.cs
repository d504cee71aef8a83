using FluentAssertions;
using Sd35.Models.Transformer;
using Sd35.Tools.Benchmarks;

namespace Sd35.Tests.Synthetic;

/// <summary>The full-size benchmark's CPU smoke run at the tiny preset (seconds), and its analytic FLOP counts.</summary>
public sealed class RandomModelBenchmarkTests
{
    [Fact]
    public void Tiny_cpu_run_reports_every_section_with_finite_times_and_memory()
    {
        var result = RandomModelBenchmark.Run(new RandomModelBenchmarkOptions { Preset = "tiny", Size = 32, Steps = 2, MaxSequenceLength = 16 });
        var sections = result["sections"]!.AsObject();
        sections.Select(s => s.Key).Should().BeEquivalentTo(
            "clip_encoding", "t5_encoding", "total_encoding", "denoising_step_0", "denoising_step_1", "denoising", "vae", "total");
        foreach (var (name, section) in sections)
            section!["seconds"]!.GetValue<double>().Should().BeGreaterThan(0).And.BeLessThan(600, name);
        sections["denoising"]!["tflops_per_second"]!.GetValue<double>().Should().BeGreaterThan(0);
        sections["total"]!["peak_memory_bytes"]!.GetValue<long>().Should().BeGreaterThan(0);
        result["runtime"]!.GetValue<string>().Should().Contain("libtorch").And.Contain("device cpu");
    }

    [Fact]
    public void Sd35_large_costs_31_TFLOP_a_forward_and_1_74_PFLOP_an_image_at_1024()
    {
        double forward = AnalyticCost.TransformerForwardFlops(SD3TransformerConfig.SD35Large, imageTokens: 4096, promptTokens: 333);
        (forward / 1e12).Should().BeApproximately(31.14, 0.01);
        (forward * 2 * 28 / 1e15).Should().BeApproximately(1.744, 0.001);
    }

    [Fact]
    public void Asking_for_cuda_binds_to_it_or_names_why_it_cannot()
    {
        var act = () => RandomModelBenchmark.ParseDevice("cuda");
        if (TorchSharp.torch.cuda.is_available())
            act.Should().NotThrow().Which.type.Should().Be(TorchSharp.DeviceType.CUDA, "where there is CUDA, 'cuda' is its first device");
        else
            act.Should().Throw<Sd35.Errors.RequestException>().WithMessage("*CUDA*not available*SD35_LIBTORCH_DIR*");
    }
}
