using System.Text.RegularExpressions;
using Sd35.Pipeline;
using Sd35.Server.Hosting;

namespace Sd35.Server.Jobs;

/// <summary>
/// The one folder the server writes to. File names are made here from job ids (32 hex digits), never from request
/// text, and every PNG is written under a temporary name and renamed when complete (<see cref="ImageOutput.SavePng(RgbImage, string)"/>),
/// so no request can write elsewhere and no reader ever sees a partial image.
/// </summary>
public sealed partial class OutputFolder
{
    public OutputFolder(ServerOptions options)
    {
        Path = System.IO.Path.GetFullPath(options.OutputFolder);
        Directory.CreateDirectory(Path);
        RemoveLeftovers();
    }

    public string Path { get; }

    /// <summary>Writes a job's images: <c>{id}.png</c>, then <c>{id}-2.png</c> … for a batch; returns their paths in order.</summary>
    public IReadOnlyList<string> Save(string jobId, IReadOnlyList<RgbImage> images)
    {
        var files = images.Select((_, i) => FileOf(jobId, i)).ToList();
        for (int i = 0; i < images.Count; i++) ImageOutput.SavePng(images[i], files[i]);
        return files;
    }

    public void Delete(string jobId)
    {
        FileOf(jobId, 0);   // checks the id
        foreach (var file in Directory.EnumerateFiles(Path, jobId + "*.png"))
            if (OwnFile().IsMatch(System.IO.Path.GetFileName(file))) File.Delete(file);
    }

    string FileOf(string jobId, int index) =>
        JobId().IsMatch(jobId)
            ? System.IO.Path.Combine(Path, index == 0 ? jobId + ".png" : $"{jobId}-{index + 1}.png")
            : throw new ArgumentException($"'{jobId}' is not a job id");

    /// <summary>Job ids live in memory only: files of an earlier run (and temporaries a crash left) belong to no job.</summary>
    void RemoveLeftovers()
    {
        foreach (var file in Directory.EnumerateFiles(Path))
            if (OwnFile().IsMatch(System.IO.Path.GetFileName(file))) File.Delete(file);
    }

    [GeneratedRegex("^[0-9a-f]{32}$")]
    private static partial Regex JobId();

    [GeneratedRegex(@"^(\.)?[0-9a-f]{32}(-[0-9]+)?\.png(\.[0-9a-f]{32}\.tmp)?$")]
    private static partial Regex OwnFile();
}
