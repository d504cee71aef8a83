using Sd35.Tensors.Checkpoints;
using static TorchSharp.torch;

namespace Sd35.Tests.TestSupport;

/// <summary>Finds golden folders by scanning <c>fixtures/</c>, so a new golden is a new folder and nothing else.</summary>
public static class Golden
{
    /// <summary>Folders under fixtures/ that contain every one of <paramref name="files"/> and satisfy <paramref name="accept"/>.</summary>
    public static IEnumerable<string> Folders(Func<string, bool> accept, params string[] files) =>
        Directory.EnumerateDirectories(RepoPaths.Fixtures(), "*", SearchOption.AllDirectories)
            .Where(d => files.All(f => File.Exists(Path.Combine(d, f))) && accept(d))
            .OrderBy(d => d, StringComparer.Ordinal);

    /// <summary>xUnit theory rows: one per folder, named by its path under fixtures/.</summary>
    public static TheoryData<string> Cases(IEnumerable<string> folders)
    {
        var data = new TheoryData<string>();
        foreach (var folder in folders) data.Add(Path.GetRelativePath(RepoPaths.Fixtures(), folder));
        return data;
    }

    public static string Resolve(string relative) => RepoPaths.Fixtures(relative);

    /// <summary>
    /// Folders with a <c>case.json</c> and an <c>io.safetensors</c> holding every one of <paramref name="tensors"/>
    /// (only the header is read): the golden kinds under fixtures/ differ by what they store, so a test selects its
    /// kind by the tensors it compares and a new case of any kind is just a new folder.
    /// </summary>
    public static IEnumerable<string> CaseFolders(params string[] tensors) =>
        Folders(folder => HasTensors(Path.Combine(folder, "io.safetensors"), tensors), "case.json", "io.safetensors");

    static bool HasTensors(string path, string[] tensors)
    {
        using var file = SafetensorsFile.Open(path);
        var keys = file.Keys.ToHashSet(StringComparer.Ordinal);
        return tensors.All(keys.Contains);
    }

    /// <summary>Reads every tensor of an io.safetensors file.</summary>
    public static Dictionary<string, Tensor> ReadAll(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Keys.ToDictionary(k => k, file.Read);
    }
}
