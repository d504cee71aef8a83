namespace Sd35.Tokenizers;

/// <summary>Checks for the files a tokenizer is built from, so a wrong folder is reported by path.</summary>
internal static class TokenizerFiles
{
    public static string Require(string path, string description)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        if (!File.Exists(fullPath))
        {
            throw new FileNotFoundException($"The {description} '{fullPath}' does not exist.", fullPath);
        }

        return fullPath;
    }
}
