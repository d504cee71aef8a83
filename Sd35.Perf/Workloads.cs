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

    public static double FlopsOf(string name) => name switch
    {
        "mmdit_small" => 2.0 * 4 * (24.0 * 512 * 512 * 1178 + 4.0 * 1178 * 1178 * 512),
        "block_sd35_large" => 24.0 * 2432 * 2432 * 4429 + 4.0 * 4429 * 4429 * 2432,
        _ => throw new ArgumentException($"unknown workload '{name}'"),
    };

    public static double ReferenceSecondsOf(string name) => name switch
    {
        "mmdit_small" => 1.54,
        "block_sd35_large" => 10.0,
        _ => throw new ArgumentException($"unknown workload '{name}'"),
    };

    /// <summary>The repository's fixtures folder, found by walking up to Sd35.sln (BenchmarkDotNet runs from a generated folder).</summary>
    public static string FixturesDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Sd35.sln"))) return Path.Combine(dir.FullName, "fixtures");
        throw new DirectoryNotFoundException($"No Sd35.sln above {AppContext.BaseDirectory}.");
    }
}
