using Sd35.Tokenizers;

namespace Sd35.Pipeline;

/// <summary>
/// The components a run uses without a model (<see cref="ModelSource.BuiltIn"/>): the tiny random-weight components
/// of the first pipeline golden, found in the clone's <c>fixtures/reference</c> above the program. Their images are
/// noise-like; they let every front-end start, and its tests run, without a download.
/// </summary>
public static class BuiltInComponents
{
    public static PipelineComponents Load()
    {
        var reference = FindReferenceFolder();
        return PipelineComponents.FromCase(Path.Combine(reference, "pipeline", "case0", "case.json"), reference, () => TokenizerSet.Default());
    }

    public const string Description = "built-in tiny reference components (fixtures/reference, random weights: noise-like images)";

    static string FindReferenceFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "fixtures", "reference");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException(
            $"The built-in default components (fixtures/reference) were not found above {AppContext.BaseDirectory}; run from the repository or pass --model <diffusers folder>.");
    }
}
