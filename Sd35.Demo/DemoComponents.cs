using Sd35.Pipeline;
using Sd35.Tokenizers;

namespace Sd35.Demo;

/// <summary>Which components the demo runs: a diffusers SD3.5 folder, or the tiny reference components shipped in fixtures/.</summary>
public static class DemoComponents
{
    public static PipelineComponents Resolve(DemoOptions options) =>
        options.Model is null ? BuiltInDefault() : PipelineComponents.FromDiffusersFolder(options.Model);

    /// <summary>The tiny random-weight components of the first pipeline golden, found in the clone's fixtures/.</summary>
    public static PipelineComponents BuiltInDefault()
    {
        var reference = FindReferenceFolder();
        return PipelineComponents.FromCase(Path.Combine(reference, "pipeline", "case0", "case.json"), reference, () => TokenizerSet.Default());
    }

    static string FindReferenceFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "fixtures", "reference");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException(
            $"The built-in default components (fixtures/reference) were not found above {AppContext.BaseDirectory}; run the demo from the repository or pass --model <diffusers folder>.");
    }
}
