namespace Sd35.Tests.TestSupport;

/// <summary>Locates the repository (the folder holding Sd35.sln) and its fixtures from the test binary.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string Fixtures(params string[] parts) => Path.Combine([Root, "fixtures", .. parts]);

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Sd35.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"No Sd35.sln above {AppContext.BaseDirectory}.");
    }
}
