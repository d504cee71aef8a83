using Sd35.Tools.Benchmarks;

namespace Sd35.Perf;

/// <summary>
/// <c>random-model [options]</c>: the full-size benchmark without a checkpoint (<see cref="RandomModelBenchmark"/>);
/// options in <see cref="RandomModelBenchmarkOptions.Usage"/>.
/// </summary>
public static class RandomModelCommand
{
    public static int Run(string[] args)
    {
        RandomModelBenchmark.RunAndReport(RandomModelBenchmarkOptions.Parse(args), Console.Out);
        return 0;
    }
}
