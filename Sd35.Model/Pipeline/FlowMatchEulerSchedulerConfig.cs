using System.Text.Json;
using Sd35.Tensors;

namespace Sd35.Pipeline;

/// <summary>
/// The part of diffusers' <c>FlowMatchEulerDiscreteScheduler</c> config (<c>scheduler/scheduler_config.json</c>)
/// that SD3 / SD3.5 use: a fixed time shift. The sigma transforms SD3.5 never enables are refused rather than
/// silently ignored, because ignoring one would produce a different schedule without any error.
/// </summary>
public sealed record FlowMatchEulerSchedulerConfig(int NumTrainTimesteps = 1000, double Shift = 1.0)
{
    static readonly string[] UnsupportedFlags =
        ["use_dynamic_shifting", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "invert_sigmas"];

    public static FlowMatchEulerSchedulerConfig FromJson(JsonElement config)
    {
        foreach (var flag in UnsupportedFlags)
            if (config.Bool(flag, false))
                throw new NotSupportedException($"Scheduler option '{flag}' = true is not supported; SD3.5 uses a fixed shift (set it to false).");
        if (config.TryGetProperty("shift_terminal", out var terminal) && terminal.ValueKind != JsonValueKind.Null)
            throw new NotSupportedException("Scheduler option 'shift_terminal' is not supported; SD3.5 leaves it null.");
        var result = new FlowMatchEulerSchedulerConfig(config.Int("num_train_timesteps", 1000), config.Double("shift", 1.0));
        result.Validate();
        return result;
    }

    /// <summary>Reads a <c>scheduler_config.json</c>; a missing or malformed file is an error naming it.</summary>
    public static FlowMatchEulerSchedulerConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Scheduler config '{path}' does not exist.", path);
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            return FromJson(document.RootElement);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or ArgumentException)
        {
            throw new InvalidDataException($"'{path}': {e.Message}", e);
        }
    }

    public void Validate()
    {
        if (NumTrainTimesteps < 1) throw new ArgumentException($"num_train_timesteps must be at least 1, got {NumTrainTimesteps}.");
        if (!(Shift > 0) || double.IsInfinity(Shift)) throw new ArgumentException($"shift must be a positive finite number, got {Shift}.");
    }
}
