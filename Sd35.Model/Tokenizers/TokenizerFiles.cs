using System.Text.Json;
using Sd35.Errors;

namespace Sd35.Tokenizers;

/// <summary>Checks and reads the files a tokenizer is built from, so a wrong or damaged file is reported by path.</summary>
static class TokenizerFiles
{
    public static string Require(string path, string description)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        if (!File.Exists(fullPath))
        {
            throw new TokenizerException(fullPath, $"the {description} does not exist");
        }

        return fullPath;
    }

    /// <summary>Parses a JSON tokenizer file; malformed JSON is a <see cref="TokenizerException"/> naming it.</summary>
    public static JsonDocument ReadJson(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            string where = e.LineNumber is long line ? $" (line {line + 1})" : "";
            throw new TokenizerException(path, $"is not valid JSON{where}: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }
}
