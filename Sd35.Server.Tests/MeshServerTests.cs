using System.Net.Http.Json;
using System.Text.Json;
using FluentAssertions;
using Sd35.Server.Jobs;

namespace Sd35.Server.Tests;

/// <summary>The server with <c>--parallel</c>: the denoising loop runs on a simulated 2-device mesh; cancel still stops it, with models resident or staged.</summary>
public sealed class MeshServerTests
{
    [Theory]
    [InlineData("resident")]
    [InlineData("staged")]
    public async Task A_mesh_server_generates_and_cancels_at_a_step_boundary(string models)
    {
        await using var server = await LiveServer.StartAsync(null, "--parallel", "n300_cfg1_sp2_tp1", "--models", models);
        var info = await server.Client.GetFromJsonAsync<JsonElement>("/v1/info");
        info.GetProperty("models").GetString().Should().Be(models);
        info.GetProperty("config").GetString().Should().Be("n300_cfg1_sp2_tp1");
        info.GetProperty("device").GetString().Should().Contain("mesh");

        var done = await server.Client.WaitFinished(await server.Client.SubmitOk(new { prompt = "mesh", steps = 2, width = 32, height = 32 }));
        done.Status.Should().Be(JobStatus.Succeeded, done.Error);

        using var hold = new StepHold(server.Queue, "long");
        var running = await server.Client.SubmitOk(new { prompt = "long", steps = 200, width = 32, height = 32 });
        await hold.WaitHeld(running);
        (await server.Client.DeleteAsync($"/v1/images/{running}")).StatusCode.Should().Be(System.Net.HttpStatusCode.Accepted);
        var stopped = await server.Client.WaitFinished(running, TimeSpan.FromMinutes(1));
        stopped.Status.Should().Be(JobStatus.Cancelled, stopped.Error);
        stopped.Step.Should().BeLessThan(200);

        var after = await server.Client.WaitFinished(await server.Client.SubmitOk(new { prompt = "after", steps = 2, width = 32, height = 32 }));
        after.Status.Should().Be(JobStatus.Succeeded, "a cancelled job leaves the pipeline (and kept models) ready: " + after.Error);
    }

    [Fact]
    public async Task A_request_that_does_not_fit_the_mesh_layout_is_a_400_before_queueing()
    {
        await using var server = await LiveServer.StartAsync(null, "--parallel", "t3k_cfg2_sp2_tp2");
        var response = await server.Client.Submit(new { prompt = "no guidance", guidance = 1.0 });
        response.StatusCode.Should().Be(System.Net.HttpStatusCode.BadRequest);
        var error = await response.Content.ReadFromJsonAsync<JsonElement>();
        error.GetProperty("field").GetString().Should().Be("parallel", "the layout, not the value alone, is at fault");
        error.GetProperty("error").GetString().Should().Contain("two submeshes");
        server.Queue.Waiting.Should().Be(0);
    }
}
