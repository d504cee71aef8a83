using Sd35.Errors;
using Sd35.Mesh;
using FluentAssertions;
using Sd35.Models.Clip;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using Xunit.Abstractions;
using static Sd35.Tests.Models.TextEncoderFixtures;
using static TorchSharp.torch;

namespace Sd35.Tests.Models.Clip;

public class ClipTextModelTests(ITestOutputHelper log)
{
    /// <summary>
    /// Closed form: token + position embeddings; per layer q/k/v/out (weight + bias), two LayerNorms, fc1, fc2;
    /// final LayerNorm; the projection (no bias).
    /// </summary>
    static long ExpectedParameters(ClipTextConfig c)
    {
        long h = c.HiddenSize, i = c.IntermediateSize;
        long perLayer = 4 * (h * h + h) + 2 * 2 * h + (h * i + i) + (i * h + h);
        return (long)c.VocabSize * h + (long)c.MaxPositionEmbeddings * h + c.NumHiddenLayers * perLayer + 2 * h + h * c.ProjectionDim;
    }

    [Theory]
    [InlineData("ClipL", 123_650_304L)]
    [InlineData("ClipG", 694_659_840L)]
    public void Preset_has_the_real_parameter_count(string preset, long expected)
    {
        var config = preset == "ClipL" ? ClipTextConfig.ClipL : ClipTextConfig.ClipG;
        ExpectedParameters(config).Should().Be(expected);
        using var model = new ClipTextModel(config, MeshRank.Single(Meta), ScalarType.BFloat16);
        ParameterCount(model).Should().Be(expected);
    }

    [Fact]
    public void Closed_form_count_matches_the_built_tiny_models()
    {
        foreach (var folder in new[] { ClipLFolder, ClipGFolder })
        {
            var config = new ModelFolder(folder).ReadConfig<ClipTextConfig>();
            using var model = new ClipTextModel(config);
            ParameterCount(model).Should().Be(ExpectedParameters(config), folder);
            using var checkpoint = new ModelFolder(folder).OpenCheckpoint();
            checkpoint.Keys.Sum(k => checkpoint.Entry(k).Shape.Aggregate(1L, (a, b) => a * b)).Should().Be(ExpectedParameters(config));
        }
    }

    [Fact]
    public void Config_reads_the_checkpoint_field_names()
    {
        var config = new ModelFolder(ClipGFolder).ReadConfig<ClipTextConfig>();
        config.Should().Be(new ClipTextConfig
        {
            ModelType = "clip_text_model", HiddenSize = 32, IntermediateSize = 96, ProjectionDim = 32, NumHiddenLayers = 3, NumAttentionHeads = 4, HiddenAct = "gelu",
        });
        new ModelFolder(ClipLFolder).ReadConfig<ClipTextConfig>().HiddenAct.Should().Be("quick_gelu");
    }

    [Theory]
    [InlineData("clip_l_tiny")]
    [InlineData("clip_g_tiny")]
    public void Bf16_model_stays_close_to_the_fp32_reference(string name)
    {
        var folder = RepoPaths.Fixtures("reference", "text_encoder", name);
        var io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
        using var model = ClipTextModel.FromFolder(new ModelFolder(folder), dtype: ScalarType.BFloat16);
        using var output = model.forward(io["input_ids"]);
        output.TextEmbeds!.dtype.Should().Be(ScalarType.BFloat16);
        foreach (var (key, actual) in new[] { ("hidden_states.2", output.HiddenState(-2)), ("text_embeds", output.TextEmbeds) })
            log.WriteLine($"{key}: {AssertQuality.Close(io[key], actual, minPcc: 0.99, maxAbsErrorRelative: 0.05, $"{name} bf16 {key}")}");
    }

    [Fact]
    public void Pooling_takes_the_first_end_of_text_token()
    {
        using var ids = tensor(new long[] { 49406, 5, 49407, 49407, 49407, 49406, 7, 8, 49407, 0 }, [2, 5]);
        using var first = ClipTextTransformer.EosPositions(ids, eosTokenId: 49407);
        first.data<long>().ToArray().Should().Equal(2, 3);
        // Legacy configs (eos_token_id 2) take the largest id, which is the same token for CLIP's vocabulary.
        using var legacy = ClipTextTransformer.EosPositions(ids, eosTokenId: 2);
        legacy.data<long>().ToArray().Should().Equal(2, 3);
    }

    [Fact]
    public void Hidden_states_hold_embeddings_then_each_layer_and_negative_indices_count_from_the_end()
    {
        var io = Golden.ReadAll(Path.Combine(ClipLFolder, "io.safetensors"));
        using var model = ClipTextModel.FromFolder(new ModelFolder(ClipLFolder));
        using var output = model.forward(io["input_ids"]);
        output.HiddenStates.Should().HaveCount(model.Config.NumHiddenLayers + 1);
        ReferenceEquals(output.HiddenState(-2), output.HiddenStates[^2]).Should().BeTrue();
        ReferenceEquals(output.HiddenState(0), output.HiddenStates[0]).Should().BeTrue();
    }

    [Fact]
    public void The_legacy_position_ids_buffer_in_a_checkpoint_is_skipped()
    {
        using var dir = new TempDirectory();
        var state = Golden.ReadAll(Path.Combine(ClipLFolder, "model.safetensors"));
        state["text_model.embeddings.position_ids"] = arange(77, int64).unsqueeze(0);
        SafetensorsWriter.Write(dir.File("model.safetensors"), state);
        File.Copy(Path.Combine(ClipLFolder, "config.json"), dir.File("config.json"));
        using var model = ClipTextModel.FromFolder(new ModelFolder(dir.Path));
        model.text_projection.weight!.Equals(state["text_projection.weight"]).Should().BeTrue();
    }

    [Fact]
    public void Float16_and_unknown_activations_are_refused_with_the_reason()
    {
        var fp16 = () => new ClipTextModel(ClipTextConfig.ClipL, MeshRank.Single(Meta), ScalarType.Float16);
        fp16.Should().Throw<ArgumentException>().WithMessage("*Float16*");
        var act = () => new ClipTextModel(ClipTextConfig.ClipL with { HiddenAct = "swish" }, MeshRank.Single(Meta));
        act.Should().Throw<ConfigException>().WithMessage("*$.hidden_act*swish*");
        var heads = () => new ClipTextModel(ClipTextConfig.ClipL with { NumAttentionHeads = 7 }, MeshRank.Single(Meta));
        heads.Should().Throw<ConfigException>().WithMessage("*$.num_attention_heads*num_attention_heads 7*");
    }
}
