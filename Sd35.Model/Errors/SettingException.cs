namespace Sd35.Errors;

/// <summary>
/// A pipeline setting (<see cref="Sd35.Hosting.PipelineSettings"/>) is malformed, out of range or not supported: the
/// message names the option as users type it (<c>--parallel 'x': …</c>), for the demo's and the server's exit 2.
/// </summary>
public sealed class SettingException(string option, string? value, string problem)
    : InputException(value is null ? $"--{option}: {problem}" : $"--{option} '{value}': {problem}")
{
    public string Option { get; } = option;
}

/// <summary>The process cannot be set up as its environment asks (<c>SD35_LIBTORCH_DIR</c> naming no libtorch): one line, exit 2.</summary>
public sealed class RuntimeSetupException(string message, Exception? inner = null) : InputException(message, inner);
