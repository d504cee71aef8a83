using Sd35.Tensors.Quantization;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>Workloads by name, for the benchmarks and the quick report.</summary>
public static class Workloads
{
    public static readonly string[] Names = ["mmdit_small", "block_sd35_large", "block_sd35_large_bf16w", "block_sd35_large_q8_0w", "block_sd35_large_bf16"];

    public static TransformerWorkload Create(string name) => name switch
    {
        "mmdit_small" => TransformerWorkload.MmditSmall(Harness.RepoPaths.Fixtures()),
        "block_sd35_large" => TransformerWorkload.BlockSd35Large(),
        // The same block computing in fp32 with its linear weights stored as bf16, or as Q8_0 blocks, expanded per use.
        "block_sd35_large_bf16w" => TransformerWorkload.BlockSd35Large(storage: new() { WeightDType = ScalarType.BFloat16 }, name: name),
        "block_sd35_large_q8_0w" => TransformerWorkload.BlockSd35Large(storage: new() { Quantize = GgmlType.Q8_0 }, name: name),
        // ... and computing in bf16 with bf16 weights (the old --bf16): whether this CPU's bf16 arithmetic beats fp32.
        "block_sd35_large_bf16" => TransformerWorkload.BlockSd35Large(name: name, dtype: ScalarType.BFloat16),
        "gemm" => TransformerWorkload.Gemm(),
        _ => throw new ArgumentException($"unknown workload '{name}'; known: {string.Join(", ", Names)}"),
    };

    /// <summary>
    /// A time of the Python reference stack (diffusers on PyTorch CPU, fp32, 2 threads) for a shape, with the machine
    /// and date it was measured on. Such a constant only means something on that machine under that load; the primary
    /// figure everywhere is the fraction of the same-process GEMM rate ("of gemm").
    /// </summary>
    public sealed record ReferenceTime(double LowSeconds, double HighSeconds, string Machine, string Date)
    {
        public string Label => LowSeconds == HighSeconds ? $"{LowSeconds:G3} s on {Machine}, {Date}" : $"{LowSeconds:G3}–{HighSeconds:G3} s on {Machine}, {Date}";
    }

    /// <summary>The analytic cost and the reference stack's times of each shape, in one place.</summary>
    public sealed record Cost(double Flops, IReadOnlyList<ReferenceTime> Reference);

    const string FirstMachine = "the 2-core CI-class machine of fixtures/bench/README.md";
    const string FirstDate = "before 2026-11-25 (fixtures/bench)";
    const string Zen5Machine = "the 2-core AMD EPYC (Zen 5) CI-class VM";
    const string Zen5Date = "2026-11-29";

    static readonly Dictionary<string, Cost> Costs = new()
    {
        // 4 blocks, batch 2, hidden 512, 1024 image + 154 prompt tokens: 82.0 GFLOP.
        ["mmdit_small"] = new(2 * 4 * JointBlockFlops(512, 1024 + 154),
            [new(1.54, 1.54, FirstMachine, FirstDate), new(3.7, 4.7, Zen5Machine, Zen5Date)]),
        // one SD3.5 Large block, hidden 2432, 4096 image + 333 prompt tokens: 819.5 GFLOP.
        ["block_sd35_large"] = new(JointBlockFlops(2432, 4096 + 333),
            [new(10.0, 10.0, FirstMachine, FirstDate), new(29, 39, Zen5Machine, Zen5Date)]),
        // the same block with bf16-stored and Q8_0-stored linear weights: the same arithmetic, no reference time.
        ["block_sd35_large_bf16w"] = new(JointBlockFlops(2432, 4096 + 333), []),
        ["block_sd35_large_q8_0w"] = new(JointBlockFlops(2432, 4096 + 333), []),
        ["block_sd35_large_bf16"] = new(JointBlockFlops(2432, 4096 + 333), []),
        // 4096×2432 by 2432×2432: the GEMM baseline, no reference time.
        ["gemm"] = new(2.0 * 4096 * 2432 * 2432, []),
    };

    public static Cost CostOf(string name) =>
        Costs.TryGetValue(name, out var cost) ? cost : throw new ArgumentException($"unknown workload '{name}'");

    static double JointBlockFlops(double d, double n) => Sd35.Tools.Benchmarks.AnalyticCost.JointBlockFlops(d, n);
}
