using Sd35.Tensors.Checkpoints;
using Sd35.Errors;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using FluentAssertions;
using Sd35.Pipeline;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Pipeline;

public class FlowMatchEulerSchedulerTests
{
    static string SchedulerFixture(string name) => RepoPaths.Fixtures("reference", "scheduler", name);

    static FlowMatchEulerSchedulerConfig FixtureConfig() => ModelConfig.Read<FlowMatchEulerSchedulerConfig>(SchedulerFixture("scheduler_config.json"));

    public static TheoryData<string> ScheduleKeys()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(SchedulerFixture("schedules.json")));
        var data = new TheoryData<string>();
        foreach (var property in document.RootElement.EnumerateObject()) data.Add(property.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(ScheduleKeys))]
    public void Schedule_matches_diffusers(string key)
    {
        var match = Regex.Match(key, @"^shift(?<shift>[0-9.]+)_steps(?<steps>\d+)$");
        match.Success.Should().BeTrue($"schedule key '{key}' names its shift and step count");
        double shift = double.Parse(match.Groups["shift"].Value, CultureInfo.InvariantCulture);
        int steps = int.Parse(match.Groups["steps"].Value, CultureInfo.InvariantCulture);
        using var document = JsonDocument.Parse(File.ReadAllText(SchedulerFixture("schedules.json")));
        var expected = document.RootElement.GetProperty(key);

        var scheduler = new FlowMatchEulerScheduler(FixtureConfig() with { Shift = shift });
        scheduler.SetTimesteps(steps);

        AssertValues(expected.GetProperty("timesteps"), scheduler.Timesteps, $"{key} timesteps");
        AssertValues(expected.GetProperty("sigmas"), scheduler.Sigmas, $"{key} sigmas");
    }

    static void AssertValues(JsonElement expected, IReadOnlyList<float> actual, string what)
    {
        var reference = expected.EnumerateArray().Select(v => v.GetDouble()).ToArray();
        actual.Should().HaveCount(reference.Length, what);
        for (int i = 0; i < reference.Length; i++)
            Math.Abs(actual[i] - reference[i]).Should().BeLessThanOrEqualTo(1e-6, $"{what}[{i}]: expected {reference[i]:R}, got {actual[i]:R}");
    }

    [Fact]
    public void Four_step_trajectory_matches_diffusers()
    {
        var io = Golden.ReadAll(SchedulerFixture("steps_shift3_n4.safetensors"));
        var scheduler = new FlowMatchEulerScheduler(FixtureConfig());
        scheduler.SetTimesteps(4);
        // Chained from our own previous result, so an error in any step carries into the next comparison.
        var sample = io["sample_0"];
        for (int i = 0; i < 4; i++)
        {
            var next = scheduler.Step(io[$"model_output_{i}"], i, sample);
            AssertQuality.Fp32(io[$"sample_{i + 1}"], next, $"sample_{i + 1}");
            sample = next;
        }
    }

    [Fact]
    public void Step_returns_the_model_outputs_dtype_after_a_float32_update()
    {
        var scheduler = new FlowMatchEulerScheduler(FixtureConfig());
        scheduler.SetTimesteps(2);
        using var sample = randn(1, 4, 2, 2);
        using var output = randn(1, 4, 2, 2).to(ScalarType.BFloat16);
        using var next = scheduler.Step(output, 0, sample);
        next.dtype.Should().Be(ScalarType.BFloat16);
        float dt = scheduler.Sigmas[1] - scheduler.Sigmas[0];
        using var expected = (sample + output * dt).to(ScalarType.BFloat16);
        next.Equals(expected).Should().BeTrue();
    }

    [Fact]
    public void Scale_noise_rounds_sigma_and_one_minus_sigma_to_the_samples_dtype()
    {
        // diffusers casts its sigmas to sample.dtype before σ·noise + (1 − σ)·sample: in bf16, 1 − σ is bf16(1 − bf16(σ)).
        var scheduler = new FlowMatchEulerScheduler(FixtureConfig());
        scheduler.SetTimesteps(28);
        using var one = ones(1, 1, 1, 1, dtype: ScalarType.BFloat16);
        using var zero = zeros(1, 1, 1, 1, dtype: ScalarType.BFloat16);
        static float Value(Tensor t) => t.to(ScalarType.Float32).item<float>();
        int differs = 0;
        for (int i = 0; i < scheduler.Sigmas.Count; i++)
        {
            float sigma = scheduler.Sigmas[i];
            using var kept = scheduler.ScaleNoise(one, i, zero);
            using var noised = scheduler.ScaleNoise(zero, i, one);
            kept.dtype.Should().Be(ScalarType.BFloat16);
            using var sigmaBf16 = tensor(sigma).to(ScalarType.BFloat16);
            using var keepBf16 = (1.0 - sigmaBf16).to(ScalarType.BFloat16);
            Value(kept).Should().Be(Value(keepBf16), $"1 − σ at step {i} (σ = {sigma})");
            Value(noised).Should().Be(Value(sigmaBf16), $"σ at step {i}");
            using var once = tensor(1f - sigma).to(ScalarType.BFloat16);
            if (Value(once) != Value(keepBf16)) differs++;
        }
        differs.Should().BeGreaterThan(0, "some step's 1 − σ must round differently, or this test could not tell the two apart");
    }

    [Fact]
    public void Using_the_schedule_before_setting_it_is_an_error()
    {
        var scheduler = new FlowMatchEulerScheduler(FixtureConfig());
        using var x = zeros(1);
        scheduler.Invoking(s => s.Step(x, 0, x)).Should().Throw<InvalidOperationException>().WithMessage("*SetTimesteps*");
        scheduler.SetTimesteps(3);
        scheduler.Invoking(s => s.Step(x, 3, x)).Should().Throw<ArgumentOutOfRangeException>();
    }

    [Theory]
    [InlineData("use_dynamic_shifting")]
    [InlineData("use_karras_sigmas")]
    [InlineData("use_exponential_sigmas")]
    [InlineData("use_beta_sigmas")]
    [InlineData("invert_sigmas")]
    public void Unsupported_sigma_options_are_refused_by_name(string flag)
    {
        var act = () => ModelConfig.Parse<FlowMatchEulerSchedulerConfig>($$"""{"num_train_timesteps": 1000, "shift": 3.0, "{{flag}}": true}""");
        act.Should().Throw<ConfigException>().WithMessage($"*$.{flag}*");
    }

    [Fact]
    public void Shift_terminal_is_refused_and_defaults_apply()
    {
        var act = () => ModelConfig.Parse<FlowMatchEulerSchedulerConfig>("""{"shift_terminal": 0.1}""");
        act.Should().Throw<ConfigException>().WithMessage("*$.shift_terminal*");
        ModelConfig.Parse<FlowMatchEulerSchedulerConfig>("{}").Should().Be(new FlowMatchEulerSchedulerConfig());
        (FixtureConfig().NumTrainTimesteps, FixtureConfig().Shift).Should().Be((1000, 3.0));
    }
}
