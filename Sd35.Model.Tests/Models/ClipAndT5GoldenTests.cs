using FluentAssertions;
using Sd35.Tensors.Checkpoints;
using System.Text.Json;
using Sd35.Models.Clip;
using Xunit.Abstractions;
using Sd35.Models.T5;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Models;

/// <summary>
/// Every golden text encoder under fixtures/ (config.json + model.safetensors + io.safetensors whose
/// <c>model_type</c> is a CLIP text model or T5) is loaded by name and run on its stored input; every stored
/// output must match to float32 rounding.
/// </summary>
public class ClipAndT5GoldenTests(ITestOutputHelper log)
{
    public static TheoryData<string> Cases => Golden.Cases(Golden.Folders(
        folder => ModelType(folder) is ClipTextConfig.ClipTextModelType or T5Config.T5ModelType,
        "config.json", "model.safetensors", "io.safetensors"));

    [Fact]
    public void The_cases_are_exactly_the_shipped_encoders()
    {
        // Discovery by folder contents would silently run fewer cases if a fixture lost a file or its model_type:
        // the set is pinned (add a new golden here when adding it under fixtures/).
        Cases.Select((object[] row) => (string)row[0]).Should().BeEquivalentTo(
            Path.Combine("reference", "text_encoder", "clip_g_tiny"),
            Path.Combine("reference", "text_encoder", "clip_l_tiny"),
            Path.Combine("reference", "text_encoder", "t5_tiny"));
    }

    internal static string? ModelType(string folder)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        return json.RootElement.TryGetProperty("model_type", out var type) ? type.GetString() : null;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encoder_reproduces_every_stored_output(string relativeFolder)
    {
        var folder = Golden.Resolve(relativeFolder);
        var io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
        using var scope = NewDisposeScope();
        var compared = ModelType(folder) == ClipTextConfig.ClipTextModelType ? CompareClip(folder, io) : CompareT5(folder, io);
        Assert.True(compared > 0, $"{relativeFolder}: io.safetensors holds no output this test knows");
    }

    int CompareClip(string folder, Dictionary<string, Tensor> io)
    {
        using var model = ClipTextModel.FromFolder(new ModelFolder(folder));
        using var output = model.forward(io["input_ids"]);
        int compared = 0;
        foreach (var (name, reference) in io)
        {
            Tensor? actual = name switch
            {
                "last_hidden_state" => output.LastHiddenState,
                "text_embeds" => output.TextEmbeds,
                _ when name.StartsWith("hidden_states.", StringComparison.Ordinal) => output.HiddenStates[int.Parse(name["hidden_states.".Length..])],
                _ => null,
            };
            if (actual is null) continue;
            log.WriteLine($"{name}: {AssertQuality.Fp32(reference, actual, $"{folder}: {name}")}");
            compared++;
        }
        return compared;
    }

    int CompareT5(string folder, Dictionary<string, Tensor> io)
    {
        using var model = T5EncoderModel.FromFolder(new ModelFolder(folder));
        using var output = model.forward(io["input_ids"]);
        log.WriteLine($"last_hidden_state: {AssertQuality.Fp32(io["last_hidden_state"], output, $"{folder}: last_hidden_state")}");
        return 1;
    }
}
