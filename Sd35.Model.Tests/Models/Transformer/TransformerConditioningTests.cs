using FluentAssertions;
using Sd35.Models.Transformer;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Models.Transformer;

/// <summary>
/// The step-invariant part of the forward made once for a whole schedule (one GEMM per norm over every step's rows)
/// must give each step what that step's own forward gives: the same arithmetic, batched, so equal to fp32 rounding.
/// </summary>
public class TransformerConditioningTests
{
    static readonly float[] StepTimes = [1000f, 812.5f, 500f, 137.25f, 3f];

    static (SD3Transformer2DModel Model, Dictionary<string, Tensor> Io) Tiny()
    {
        var folder = Golden.Resolve(Path.Combine("reference", "transformer", "tiny"));
        return (SD3Transformer2DModel.FromFolder(new ModelFolder(folder)), Golden.ReadAll(Path.Combine(folder, "io.safetensors")));
    }

    static Tensor Schedule(long batch) => tensor(StepTimes).unsqueeze(1).expand(StepTimes.Length, batch);

    [Theory]
    [InlineData(new int[0])]
    [InlineData(new[] { 1 })]
    public void Every_step_of_a_schedule_matches_that_steps_own_forward(int[] skip)
    {
        using var scope = NewDisposeScope();
        var (model, io) = Tiny();
        var (latent, embeds, pooled) = (io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"]);
        long batch = latent.shape[0];
        using var conditioning = model.Condition(embeds, pooled, Schedule(batch));

        conditioning.Steps.Should().Be(StepTimes.Length);
        for (int i = 0; i < StepTimes.Length; i++)
        {
            var alone = model.Forward(latent, embeds, pooled, full([batch], StepTimes[i], float32), skip);
            var scheduled = model.Forward(latent, conditioning, i, skip);
            AssertQuality.Fp32(alone, scheduled, $"step {i} (t = {StepTimes[i]}), skip [{string.Join(",", skip)}]");
        }
    }

    [Fact]
    public void Steps_differ_so_the_schedule_is_not_one_step_repeated()
    {
        using var scope = NewDisposeScope();
        var (model, io) = Tiny();
        using var conditioning = model.Condition(io["encoder_hidden_states"], io["pooled_projections"], Schedule(io["hidden_states"].shape[0]));
        var first = model.Forward(io["hidden_states"], conditioning, 0);
        var last = model.Forward(io["hidden_states"], conditioning, StepTimes.Length - 1);
        (first - last).abs().max().item<float>().Should().BeGreaterThan(1e-3f);
    }

    [Fact]
    public void A_step_outside_the_schedule_or_a_batch_it_was_not_made_for_is_refused()
    {
        using var scope = NewDisposeScope();
        var (model, io) = Tiny();
        var latent = io["hidden_states"];
        using var conditioning = model.Condition(io["encoder_hidden_states"], io["pooled_projections"], Schedule(latent.shape[0]));

        model.Invoking(m => m.Forward(latent, conditioning, StepTimes.Length)).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*steps 0..4*");
        model.Invoking(m => m.Forward(cat([latent, latent], 0), conditioning, 0)).Should().Throw<ArgumentException>().WithMessage("*conditioning for*");
        model.Invoking(m => m.Condition(io["encoder_hidden_states"], io["pooled_projections"], tensor(StepTimes)))
            .Should().Throw<ArgumentException>().WithMessage("*timesteps must be*");
    }
}
