namespace Sd35.Perf;

/// <summary>Workloads by name, for the benchmarks and the quick report.</summary>
public static class Workloads
{
    public static readonly string[] Names = ["mmdit_small", "block_sd35_large"];

    public static TransformerWorkload Create(string name) => name switch
    {
        "mmdit_small" => TransformerWorkload.MmditSmall(FixturesDirectory()),
        "block_sd35_large" => TransformerWorkload.BlockSd35Large(),
        "gemm" => TransformerWorkload.Gemm(),
        _ => throw new ArgumentException($"unknown workload '{name}'; known: {string.Join(", ", Names)}"),
    };

    /// <summary>The analytic cost and the reference stack's time of each shape (fixtures/bench/README.md), in one place.</summary>
    public sealed record Cost(double Flops, double ReferenceSeconds);

    static readonly Dictionary<string, Cost> Costs = new()
    {
        // 4 blocks, batch 2, hidden 512, 1024 image + 154 prompt tokens: 82.0 GFLOP.
        ["mmdit_small"] = new(2 * 4 * JointBlockFlops(512, 1024 + 154), 1.54),
        // one SD3.5 Large block, hidden 2432, 4096 image + 333 prompt tokens: 819.5 GFLOP.
        ["block_sd35_large"] = new(JointBlockFlops(2432, 4096 + 333), 10.0),
        // 4096×2432 by 2432×2432: the GEMM baseline, no reference time.
        ["gemm"] = new(2.0 * 4096 * 2432 * 2432, 0),
    };

    public static Cost CostOf(string name) =>
        Costs.TryGetValue(name, out var cost) ? cost : throw new ArgumentException($"unknown workload '{name}'");

    static double JointBlockFlops(double d, double n) => Sd35.Synthetic.AnalyticCost.JointBlockFlops(d, n);

    /// <summary>The repository's fixtures folder, found by walking up to Sd35.sln (BenchmarkDotNet runs from a generated folder).</summary>
    public static string FixturesDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Sd35.sln"))) return Path.Combine(dir.FullName, "fixtures");
        throw new DirectoryNotFoundException($"No Sd35.sln above {AppContext.BaseDirectory}.");
    }
}
