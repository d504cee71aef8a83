namespace Sd35.Errors;

/// <summary>
/// An error the project raises on purpose, with its culprit named in the message and in a property, so that every
/// front-end (the demo's exit codes, the server's HTTP responses) maps it without parsing text. Anything else that
/// escapes is an internal error.
/// </summary>
public abstract class Sd35Exception(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The input is at fault (a file, a config value, a request field), not the program: the demo exits 2 with the
/// message as its one line, the server answers 400. Raised before any expensive work wherever it can be.
/// </summary>
public abstract class InputException(string message, Exception? inner = null) : Sd35Exception(message, inner);

/// <summary>A model config (<c>config.json</c>, <c>scheduler_config.json</c>, …) is missing, malformed or out of range.</summary>
public sealed class ConfigException(string file, string jsonPath, string problem, Exception? inner = null)
    : InputException($"{file}: {jsonPath}: {problem}", inner)
{
    public string File { get; } = file;
    /// <summary>The JSON path of the value at fault (<c>$.num_attention_heads</c>), or <c>$</c> for the whole document.</summary>
    public string JsonPath { get; } = jsonPath;
}

/// <summary>A checkpoint (safetensors file or sharded index) is malformed or does not match the model it is loaded into.</summary>
public sealed class CheckpointException(string file, string? key, string problem, Exception? inner = null)
    : InputException(key is null ? $"{file}: {problem}" : $"{file}: tensor '{key}': {problem}", inner)
{
    public string File { get; } = file;
    /// <summary>The tensor name at fault, or null when the file as a whole is.</summary>
    public string? Key { get; } = key;
}

/// <summary>A tokenizer file (<c>vocab.json</c>, <c>merges.txt</c>, <c>spiece.model</c>, …) is missing or malformed.</summary>
public sealed class TokenizerException(string file, string problem, Exception? inner = null)
    : InputException($"{file}: {problem}", inner)
{
    public string File { get; } = file;
}

/// <summary>A model folder lacks a component, or holds a file that is refused (a pickle checkpoint).</summary>
public sealed class ModelFolderException(string path, string problem, Exception? inner = null)
    : InputException($"{path}: {problem}", inner)
{
    public string Path { get; } = path;
}

/// <summary>
/// A generation request is out of range: <see cref="Field"/> is the request's field name (<c>width</c>,
/// <c>guidance</c>, <c>out</c>); the demo shows it as the option <c>--width</c>, the server as the JSON field.
/// </summary>
public sealed class RequestException(string field, string problem)
    : InputException($"{field}: {problem}")
{
    public string Field { get; } = field;
}

/// <summary>The computation produced NaN or infinity; names the stage (and step) where it was first seen. Nothing is written.</summary>
/// <param name="byEveryRank">checked on values every rank of the run holds alike, so every rank raises it at the same point</param>
public sealed class NonFiniteException(string stage, int? step, string detail, bool byEveryRank = false)
    : Sd35Exception(step is null ? $"non-finite values after {stage}: {detail}" : $"non-finite values after {stage} step {step}: {detail}"),
      Sd35.Mesh.IRaisedByEveryRank
{
    public bool ByEveryRank { get; } = byEveryRank;

    public string Stage { get; } = stage;
    public int? Step { get; } = step;
}
