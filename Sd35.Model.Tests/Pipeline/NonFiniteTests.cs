using FluentAssertions;
using Sd35.Errors;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Pipeline;

public class NonFiniteTests
{
    [Fact]
    public void NaN_latents_fail_after_the_first_step_naming_stage_and_step()
    {
        using var model = new TinyModelCopy();
        var request = TinyModelCopy.Request with { Steps = 2 };
        var pipeline = new StableDiffusion3Pipeline(model.Components());
        var stepsSeen = new List<int>();
        using var start = full(1, 16, 4, 4, float.NaN);
        var act = () => pipeline.Generate(request, GenerationObserver.Of(stepEnded: step => stepsSeen.Add(step.Index)), initialLatents: start);
        var error = act.Should().Throw<NonFiniteException>().Which;
        (error.Stage, error.Step).Should().Be(("denoising", 1));
        error.Message.Should().Contain("denoising step 1").And.Contain("NaN");
        stepsSeen.Should().BeEmpty("the check runs before anyone sees the step's latents");
    }

    [Fact]
    public void An_infinite_vae_weight_fails_at_decoding_before_the_clamp_hides_it()
    {
        using var model = WithInfiniteVaeBias();
        var act = () => new StableDiffusion3Pipeline(model.Components()).Generate(TinyModelCopy.Request);
        act.Should().Throw<NonFiniteException>().Where(e => e.Stage == "vae decoding" && e.Step == null)
            .Which.Message.Should().Contain("infinite");
    }

    [Fact]
    public void On_a_mesh_every_device_fails_the_infinite_decoding_alike_from_the_vae_devices_verdict()
    {
        using var model = WithInfiniteVaeBias();
        var options = new PipelineOptions { Parallel = Sd35.Mesh.ParallelConfig.Parse("t3k_cfg2_sp2_tp2") };
        var act = () => new StableDiffusion3Pipeline(model.Components(), options: options).Generate(TinyModelCopy.Request);
        // ByEveryRank: the devices without the VAE raised it too, from the verdict (an MPI job then goes on).
        act.Should().Throw<NonFiniteException>().Where(e => e.Stage == "vae decoding" && e.ByEveryRank)
            .Which.Message.Should().Contain("infinite");
    }

    /// <summary>A copy of the tiny model whose VAE's last bias is +∞: every decoded pixel is infinite before the clamp.</summary>
    static TinyModelCopy WithInfiniteVaeBias()
    {
        var model = new TinyModelCopy();
        var weights = Path.Combine(model.Vae, "diffusion_pytorch_model.safetensors");
        var state = Golden.ReadAll(weights);
        var key = state.Keys.First(k => k.StartsWith("decoder.conv_out.bias"));
        state[key] = full_like(state[key], float.PositiveInfinity);
        SafetensorsWriter.Write(weights, state);
        return model;
    }

    [Fact]
    public void Finite_values_pass()
    {
        using var values = randn(3, 5);
        FluentActions.Invoking(() => FiniteCheck.Ensure(values, "x")).Should().NotThrow();
    }
}
