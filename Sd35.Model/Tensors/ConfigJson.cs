using System.Text.Json;

namespace Sd35.Tensors;

/// <summary>Typed reads of diffusers / transformers <c>config.json</c> fields, with defaults where the library has them.</summary>
public static class ConfigJson
{
    public static int Int(this JsonElement e, string name, int? fallback = null) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : fallback ?? throw Missing(name);

    public static double Double(this JsonElement e, string name, double? fallback = null) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : fallback ?? throw Missing(name);

    public static string? String(this JsonElement e, string name, string? fallback = null) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : fallback;

    public static bool Bool(this JsonElement e, string name, bool fallback) =>
        e.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    public static int[] IntArray(this JsonElement e, string name, int[]? fallback = null) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Select(x => x.GetInt32()).ToArray()
            : fallback ?? throw Missing(name);

    public static string[] StringArray(this JsonElement e, string name, string[]? fallback = null) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Select(x => x.GetString() ?? "").ToArray()
            : fallback ?? throw Missing(name);

    static KeyNotFoundException Missing(string name) => new($"required field '{name}' is missing or not of the expected type");
}
