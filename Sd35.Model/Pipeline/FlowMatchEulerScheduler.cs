using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// The rectified-flow Euler sampler of SD3 / SD3.5 (diffusers v0.32.2 <c>FlowMatchEulerDiscreteScheduler</c> with a
/// fixed shift). The schedule is reproduced bit for bit: diffusers mixes float32 (torch, in <c>__init__</c>) and
/// float64 (numpy, in <c>set_timesteps</c>) arithmetic, and each value below is computed in the same precision
/// and order, because a one-ulp difference in a timestep changes the transformer's timestep embedding.
/// </summary>
public sealed class FlowMatchEulerScheduler
{
    // The ends of the shifted training schedule, float32 values as diffusers' __init__ leaves them.
    readonly float _sigmaMax;
    readonly float _sigmaMin;
    float[]? _timesteps;
    float[]? _sigmas;

    public FlowMatchEulerSchedulerConfig Config { get; }

    public FlowMatchEulerScheduler(FlowMatchEulerSchedulerConfig config)
    {
        config.Validate();
        Config = config;
        // __init__: timesteps = linspace(1, T, T) reversed, sigmas = timesteps / T, then shifted — all float32.
        // Only the two ends are used later, so only they are computed.
        float t = config.NumTrainTimesteps;
        _sigmaMax = ShiftFloat32(t / t);
        _sigmaMin = ShiftFloat32(1f / t);
    }

    /// <summary>The timesteps on the 0…T scale that the transformer is called with (float32), one per step.</summary>
    public IReadOnlyList<float> Timesteps => _timesteps ?? throw NotSet();

    /// <summary>The noise levels, one per step and a final 0 (float32): <see cref="Timesteps"/>.Count + 1 values.</summary>
    public IReadOnlyList<float> Sigmas => _sigmas ?? throw NotSet();

    public int NumInferenceSteps => Timesteps.Count;

    /// <summary>Builds the schedule for <paramref name="numInferenceSteps"/> steps (diffusers' <c>set_timesteps</c>).</summary>
    public void SetTimesteps(int numInferenceSteps)
    {
        if (numInferenceSteps < 1) throw new ArgumentOutOfRangeException(nameof(numInferenceSteps), numInferenceSteps, "at least one step is needed");
        double trainSteps = Config.NumTrainTimesteps;
        // numpy float64: linspace(sigma_max·T, sigma_min·T, n) / T, shifted again (diffusers applies the shift
        // both in __init__ and here), then converted to float32 torch tensors.
        var t = LinspaceFloat64(_sigmaMax * trainSteps, _sigmaMin * trainSteps, numInferenceSteps);
        var sigmas = new float[numInferenceSteps + 1];
        var timesteps = new float[numInferenceSteps];
        for (int i = 0; i < numInferenceSteps; i++)
        {
            sigmas[i] = (float)ShiftFloat64(t[i] / trainSteps);
            timesteps[i] = sigmas[i] * (float)trainSteps; // torch: float32 tensor × T
        }
        sigmas[numInferenceSteps] = 0f;
        _sigmas = sigmas;
        _timesteps = timesteps;
    }

    /// <summary>
    /// diffusers' <c>get_timesteps</c> of the image-to-image and inpainting pipelines: how many of the first scheduled
    /// steps <paramref name="strength"/> skips, <c>int(max(n − min(n·strength, n), 0))</c>, in float64 as Python
    /// computes it (so 10 steps at strength 0.7 skip 2, not 3: 10·0.7 is 7.000000000000001).
    /// </summary>
    public static int StepsSkipped(int numInferenceSteps, double strength)
    {
        double initTimestep = Math.Min(numInferenceSteps * strength, numInferenceSteps);
        return (int)Math.Max(numInferenceSteps - initTimestep, 0);
    }

    /// <summary>
    /// Drops the first <paramref name="beginIndex"/> steps, as diffusers' <c>set_begin_index</c> together with the
    /// pipeline's <c>timesteps[t_start:]</c>: step i of what remains is step beginIndex + i of the full schedule.
    /// </summary>
    public void StartAt(int beginIndex)
    {
        var (timesteps, sigmas) = (_timesteps ?? throw NotSet(), _sigmas!);
        if (beginIndex < 0 || beginIndex >= timesteps.Length)
            throw new ArgumentOutOfRangeException(nameof(beginIndex), beginIndex, $"the schedule has {timesteps.Length} steps; at least one must remain");
        _timesteps = timesteps[beginIndex..];
        _sigmas = sigmas[beginIndex..];
    }

    /// <summary>
    /// The flow-matching forward process, diffusers' <c>scale_noise</c>: <c>σ·noise + (1 − σ)·sample</c> at the noise
    /// level of step <paramref name="stepIndex"/> (<see cref="NumInferenceSteps"/> is the final σ = 0: the sample itself).
    /// As diffusers, σ is first cast to the sample's dtype and <c>1 − σ</c> is formed in it (in bf16 both σ and 1 − σ
    /// are rounded to bf16); the result has the sample's dtype.
    /// </summary>
    public Tensor ScaleNoise(Tensor sample, int stepIndex, Tensor noise)
    {
        var sigmas = _sigmas ?? throw NotSet();
        if (stepIndex < 0 || stepIndex >= sigmas.Length)
            throw new ArgumentOutOfRangeException(nameof(stepIndex), stepIndex, $"the schedule has {sigmas.Length} noise levels");
        using var scope = NewDisposeScope();
        var sigma = tensor(sigmas[stepIndex]).to(sample.dtype, sample.device);
        var keep = 1.0 - sigma;
        return (sigma * noise + keep * sample).to(sample.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One Euler step from step <paramref name="stepIndex"/> to the next noise level:
    /// <c>sample + (σ[i+1] − σ[i]) · model_output</c>. As in diffusers, the sample is upcast to float32, the product is
    /// formed in the model output's dtype, and the result is returned in the model output's dtype.
    /// </summary>
    public Tensor Step(Tensor modelOutput, int stepIndex, Tensor sample)
    {
        var sigmas = _sigmas ?? throw NotSet();
        if (stepIndex < 0 || stepIndex >= sigmas.Length - 1)
            throw new ArgumentOutOfRangeException(nameof(stepIndex), stepIndex, $"the schedule has {sigmas.Length - 1} steps");
        if (!modelOutput.shape.SequenceEqual(sample.shape))
            throw new ArgumentException($"model output [{string.Join(", ", modelOutput.shape)}] and sample [{string.Join(", ", sample.shape)}] differ in shape.");
        float dt = sigmas[stepIndex + 1] - sigmas[stepIndex]; // a float32 0-dim tensor difference in diffusers
        using var scope = NewDisposeScope();
        var next = sample.to(ScalarType.Float32) + modelOutput * dt;
        return next.to(modelOutput.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>The shift in float32, as torch evaluates <c>shift * s / (1 + (shift - 1) * s)</c> on a float32 tensor.</summary>
    float ShiftFloat32(float s)
    {
        float shift = (float)Config.Shift, shiftMinusOne = (float)(Config.Shift - 1.0);
        return shift * s / (1f + shiftMinusOne * s);
    }

    /// <summary>The same shift in float64, as numpy evaluates it.</summary>
    double ShiftFloat64(double s) => Config.Shift * s / (1.0 + (Config.Shift - 1.0) * s);

    /// <summary>numpy's <c>linspace(start, stop, n)</c>: <c>i · step + start</c>, with the last point exactly <c>stop</c>.</summary>
    static double[] LinspaceFloat64(double start, double stop, int n)
    {
        var result = new double[n];
        if (n == 1)
        {
            result[0] = start;
            return result;
        }
        double step = (stop - start) / (n - 1);
        for (int i = 0; i < n; i++) result[i] = i * step + start;
        result[n - 1] = stop;
        return result;
    }

    static InvalidOperationException NotSet() => new("Call SetTimesteps before using the schedule.");
}
