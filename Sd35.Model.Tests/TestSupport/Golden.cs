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

    /// <summary>Reads every tensor of an io.safetensors file.</summary>
    public static Dictionary<string, Tensor> ReadAll(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Keys.ToDictionary(k => k, file.Read);
    }
}
