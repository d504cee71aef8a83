using System.Text.Json;
using System.Text.RegularExpressions;
using Sd35.Errors;

namespace Sd35.Tensors.Checkpoints;

/// <summary>
/// A model config record: properties under the checkpoint's JSON names (<c>[JsonPropertyName]</c>), defaults where
/// the Python library has them, and a range check of every field the model uses.
/// </summary>
public interface IModelConfig
{
    /// <summary>Throws <see cref="ConfigException"/> naming <paramref name="file"/>, the JSON path and the value at fault.</summary>
    void Validate(string file);
}

/// <summary>The one reader of model configs: JSON → record → <see cref="IModelConfig.Validate"/>, every error a <see cref="ConfigException"/>.</summary>
public static partial class ModelConfig
{
    /// <summary>What a config built in code (a preset, a test's record) is called in its errors.</summary>
    public const string InMemory = "(in-memory config)";

    static readonly JsonSerializerOptions Options = new() { AllowDuplicateProperties = false };

    public static T Read<T>(string file) where T : IModelConfig
    {
        if (!File.Exists(file)) throw new ConfigException(file, "$", "the file does not exist");
        string json;
        try { json = File.ReadAllText(file); }
        catch (IOException e) { throw new ConfigException(file, "$", $"cannot be read: {e.Message}", e); }
        return Parse<T>(json, file);
    }

    /// <summary>Parses config JSON held in memory; <paramref name="file"/> names it in errors.</summary>
    public static T Parse<T>(string json, string file = InMemory) where T : IModelConfig
    {
        T? config;
        try { config = JsonSerializer.Deserialize<T>(json, Options); }
        catch (JsonException e) { throw new ConfigException(file, e.Path ?? "$", Describe(e), e); }
        if (config is null) throw new ConfigException(file, "$", "is null; expected a JSON object");
        config.Validate(file);
        return config;
    }

    /// <summary>System.Text.Json's message without the location (the exception carries the path) and with JSON type names.</summary>
    static string Describe(JsonException e)
    {
        var message = LocationSuffix().Replace(e.Message.ReplaceLineEndings(" "), "").TrimEnd('.', ' ');
        var conversion = ConversionTarget().Match(message);
        if (conversion.Success) return $"has the wrong JSON type: expected {JsonTypeOf(conversion.Groups[1].Value.TrimEnd('.'))}";
        // Syntax errors come from the reader (an internal JsonReaderException inside); conversion errors do not.
        if (e.InnerException?.GetType().Name == "JsonReaderException")
            return $"is not valid JSON (line {e.LineNumber + 1}): {message}";
        return message;
    }

    static string JsonTypeOf(string clrType) => clrType switch
    {
        "System.Int32" or "System.Int64" => "an integer",
        "System.Double" or "System.Single" or "System.Nullable`1[System.Double]" => "a number",
        "System.Boolean" or "System.Nullable`1[System.Boolean]" => "true or false",
        "System.String" => "a string",
        _ when clrType.EndsWith("[]", StringComparison.Ordinal) || clrType.Contains("List", StringComparison.Ordinal) => "an array",
        _ => "a JSON object",
    };

    [GeneratedRegex(@"\s*(Path: \S*\s*\|?\s*)?(LineNumber: \d+ \| BytePositionInLine: \d+\.?)?$")]
    private static partial Regex LocationSuffix();

    [GeneratedRegex(@"could not be converted to (\S+)")]
    private static partial Regex ConversionTarget();
}

/// <summary>Range checks for <see cref="IModelConfig.Validate"/>: each failure names the file, the JSON path and the value.</summary>
public readonly struct ConfigRules(string file)
{
    public string File => file;

    public ConfigException Fail(string key, string problem) => new(file, key.StartsWith('$') ? key : "$." + key, problem);

    public void That(bool ok, string key, string problem)
    {
        if (!ok) throw Fail(key, problem);
    }

    public void Positive(string key, long value) => That(value > 0, key, $"must be positive, got {value}");

    public void AtLeast(string key, long value, long minimum) => That(value >= minimum, key, $"must be at least {minimum}, got {value}");

    public void PositiveFinite(string key, double value) =>
        That(value > 0 && double.IsFinite(value), key, $"must be a positive finite number, got {value}");

    /// <summary>A non-empty list of positive entries; a bad entry is named by its index (<c>$.block_out_channels[2]</c>).</summary>
    public void PositiveList(string key, IReadOnlyList<int>? values)
    {
        That(values is { Count: > 0 }, key, values is null ? "must be a list, got null" : "must not be empty");
        for (int i = 0; i < values!.Count; i++) Positive($"{key}[{i}]", values[i]);
    }

    public void OneOf(string key, string? value, params string?[] allowed) =>
        That(allowed.Contains(value), key,
            $"'{value ?? "null"}' is not supported; expected {string.Join(" or ", allowed.Select(a => a is null ? "null" : $"'{a}'"))}");
}
