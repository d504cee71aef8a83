using System.Text.Json.Nodes;
using FluentAssertions;
using Sd35.Errors;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Pipeline;

public class PreflightTests
{
    [Fact]
    public void The_tiny_model_passes_and_no_file_is_left_beside_the_output()
    {
        using var model = new TinyModelCopy();
        using var outDir = new TempDirectory();
        var seconds = Preflight.Check(model.Components(), TinyModelCopy.Request, outDir.File("x.png"));
        seconds.Should().BeLessThan(30);
        Directory.EnumerateFileSystemEntries(outDir.Path).Should().BeEmpty();
    }

    [Fact]
    public void A_corrupt_vae_checkpoint_fails_before_any_model_loads()
    {
        using var model = new TinyModelCopy();
        var weights = Path.Combine(model.Vae, "diffusion_pytorch_model.safetensors");
        using (var stream = new FileStream(weights, FileMode.Open)) stream.SetLength(stream.Length - 7);
        var act = () => Preflight.Check(model.Components(), TinyModelCopy.Request);
        act.Should().Throw<CheckpointException>().Which.File.Should().Be(weights);
    }

    [Fact]
    public void A_vae_checkpoint_whose_shape_does_not_match_the_config_is_named_without_reading_weights()
    {
        using var model = new TinyModelCopy();
        var config = Path.Combine(model.Vae, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(config))!;
        json["block_out_channels"] = new JsonArray(json["block_out_channels"]!.AsArray().Select(c => JsonValue.Create(c!.GetValue<int>() * 2)).ToArray<JsonNode?>());
        File.WriteAllText(config, json.ToJsonString());
        var act = () => Preflight.Check(model.Components(), TinyModelCopy.Request);
        act.Should().Throw<CheckpointException>().Which.Message.Should().Contain("shape").And.Contain(model.Vae);
    }

    [Fact]
    public void A_missing_transformer_tensor_is_named()
    {
        using var model = new TinyModelCopy();
        var weights = Path.Combine(model.Transformer, "diffusion_pytorch_model.safetensors");
        var state = Golden.ReadAll(weights);
        state.Remove("proj_out.bias");
        SafetensorsWriter.Write(weights, state);
        var act = () => Preflight.Check(model.Components(), TinyModelCopy.Request);
        act.Should().Throw<CheckpointException>().Where(e => e.Key == "proj_out.bias").Which.Message.Should().Contain("missing keys");
    }

    [Fact]
    public void A_size_beyond_the_position_table_names_the_field_and_the_limit_in_pixels()
    {
        using var model = new TinyModelCopy();
        var components = model.Components();
        int limit = Preflight.MaxImageSize(components.TransformerConfig, components.VaeConfig.ScaleFactor);
        var act = () => Preflight.Check(components, TinyModelCopy.Request with { Width = limit + 16 - limit % 16 });
        act.Should().Throw<RequestException>().Where(e => e.Field == "width").Which.Message.Should().Contain($"at most {limit} pixels");
    }

    [Fact]
    public void An_output_path_that_is_a_directory_or_in_a_read_only_folder_is_refused_naming_the_users_path()
    {
        using var dir = new TempDirectory();
        FluentActions.Invoking(() => OutputFile.EnsureWritable(dir.Path)).Should().Throw<RequestException>()
            .Where(e => e.Field == "out").Which.Message.Should().Contain("is a directory");
        FluentActions.Invoking(() => OutputFile.EnsureWritable("/sys/kernel/sd35.png")).Should().Throw<RequestException>()
            .Where(e => e.Field == "out").Which.Message.Should().Contain("'/sys/kernel/sd35.png'").And.NotContain(".probe");
        FluentActions.Invoking(() => OutputFile.EnsureWritable(dir.File("no/such/folder/x.png"))).Should().Throw<RequestException>()
            .Which.Message.Should().Contain("does not exist");
        Directory.EnumerateFileSystemEntries(dir.Path).Should().BeEmpty();
    }
}
