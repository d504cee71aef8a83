namespace Sd35.Model.Tests.TestSupport;

/// <summary>
/// Locates the repository a test runs from, so tests read the reference data committed under
/// <c>fixtures/</c> rather than anything outside the repository.
/// </summary>
public static class RepoPaths
{
    private static readonly Lazy<string> RootPath = new(FindRoot);

    /// <summary>The directory holding <c>Sd35.sln</c>, found by walking up from the test assembly.</summary>
    public static string Root => RootPath.Value;

    /// <summary>A path under the repository's <c>fixtures/</c> folder.</summary>
    public static string Fixtures(params string[] parts) =>
        Path.Combine([Root, "fixtures", .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Sd35.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException(
            $"No directory containing Sd35.sln above the test output '{AppContext.BaseDirectory}'.");
    }
}
