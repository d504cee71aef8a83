namespace Sd35.Perf.Harness;

/// <summary>The repository (the folder holding Sd35.sln) found from the running binary, and its well-known folders.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string Fixtures(params string[] parts) => Path.Combine([Root, "fixtures", .. parts]);

    /// <summary>Where perf runs write their JSON (and CI keeps it as an artifact): TestResults/perf, or SD35_PERF_RESULTS.</summary>
    public static string PerfResults =>
        Environment.GetEnvironmentVariable("SD35_PERF_RESULTS") is { Length: > 0 } folder ? folder : Path.Combine(Root, "TestResults", "perf");

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Sd35.sln"))) return dir.FullName;
        // Run from outside a clone (e.g. an installed tool): the working folder stands in.
        return Directory.GetCurrentDirectory();
    }
}
