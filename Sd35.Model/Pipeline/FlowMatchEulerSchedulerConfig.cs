using System.Text.Json.Serialization;
using Sd35.Tensors.Checkpoints;

namespace Sd35.Pipeline;

/// <summary>
/// The part of diffusers' <c>FlowMatchEulerDiscreteScheduler</c> config (<c>scheduler/scheduler_config.json</c>)
/// that SD3 / SD3.5 use: a fixed time shift. The sigma transforms SD3.5 never enables are read only to be refused,
/// because ignoring one would produce a different schedule without any error.
/// </summary>
public sealed record FlowMatchEulerSchedulerConfig : IModelConfig
{
    public const string FileName = "scheduler_config.json";

    [JsonPropertyName("num_train_timesteps")] public int NumTrainTimesteps { get; init; } = 1000;
    [JsonPropertyName("shift")] public double Shift { get; init; } = 1.0;
    [JsonPropertyName("use_dynamic_shifting")] public bool? UseDynamicShifting { get; init; }
    [JsonPropertyName("use_karras_sigmas")] public bool? UseKarrasSigmas { get; init; }
    [JsonPropertyName("use_exponential_sigmas")] public bool? UseExponentialSigmas { get; init; }
    [JsonPropertyName("use_beta_sigmas")] public bool? UseBetaSigmas { get; init; }
    [JsonPropertyName("invert_sigmas")] public bool? InvertSigmas { get; init; }
    [JsonPropertyName("shift_terminal")] public double? ShiftTerminal { get; init; }

    /// <summary>SD3 / SD3.5's scheduler (<c>scheduler/scheduler_config.json</c> of the releases): time shift 3.</summary>
    public static FlowMatchEulerSchedulerConfig Sd35 { get; } = new() { Shift = 3.0 };

    public void Validate(string file = ModelConfig.InMemory)
    {
        var rules = new ConfigRules(file);
        rules.AtLeast("num_train_timesteps", NumTrainTimesteps, 1);
        rules.PositiveFinite("shift", Shift);
        foreach (var (key, value) in new[]
                 {
                     ("use_dynamic_shifting", UseDynamicShifting), ("use_karras_sigmas", UseKarrasSigmas),
                     ("use_exponential_sigmas", UseExponentialSigmas), ("use_beta_sigmas", UseBetaSigmas), ("invert_sigmas", InvertSigmas),
                 })
            rules.That(value != true, key, "= true is not supported; SD3.5 uses a fixed shift (set it to false)");
        rules.That(ShiftTerminal is null, "shift_terminal", $"{ShiftTerminal} is not supported; SD3.5 leaves it null");
    }
}
