using System.Text.Json;
using FluentAssertions;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using Sd35.Tokenizers;
using Sd35.Tools.Synthetic;
using static TorchSharp.torch;

namespace Sd35.Tests.Synthetic;

/// <summary>The tiny preset of the synthetic model folder: the release's layout, loaded by name, run end to end.</summary>
public sealed class SyntheticModelFolderTests : IClassFixture<SyntheticModelFolderTests.TinyFolder>
{
    public sealed class TinyFolder : IDisposable
    {
        readonly TempDirectory _dir = new();
        public string Path { get; }
        public IReadOnlyList<SyntheticComponent> Components { get; }

        public TinyFolder()
        {
            Path = System.IO.Path.Combine(_dir.Path, "sd35-tiny");
            Components = SyntheticModelFolder.Write(Path, SyntheticModelPreset.Tiny, seed: 3);
        }

        public void Dispose() => _dir.Dispose();
    }

    readonly TinyFolder _folder;

    public SyntheticModelFolderTests(TinyFolder folder) => _folder = folder;

    [Fact]
    public void Files_are_named_and_sharded_as_in_the_release()
    {
        string[] expected =
        [
            "model_index.json", "scheduler/scheduler_config.json",
            "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors.index.json",
            "transformer/diffusion_pytorch_model-00001-of-00002.safetensors", "transformer/diffusion_pytorch_model-00002-of-00002.safetensors",
            "text_encoder_3/config.json", "text_encoder_3/model.safetensors.index.json",
            "text_encoder_3/model-00001-of-00002.safetensors", "text_encoder_3/model-00002-of-00002.safetensors",
            "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
            "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
            "tokenizer_2/vocab.json", "tokenizer_2/merges.txt", "tokenizer_3/spiece.model", "tokenizer_3/special_tokens_map.json",
        ];
        foreach (var file in expected) File.Exists(Path.Combine(_folder.Path, file)).Should().BeTrue(file);
        Directory.EnumerateFiles(_folder.Path, "*.partial", SearchOption.AllDirectories).Should().BeEmpty();
        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(_folder.Path, "transformer", "diffusion_pytorch_model.safetensors.index.json")));
        using var checkpoint = Checkpoint.Open(Path.Combine(_folder.Path, "transformer", "diffusion_pytorch_model.safetensors.index.json"));
        var keys = index.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => p.Name).ToList();
        keys.Should().BeInAscendingOrder(StringComparer.Ordinal).And.BeEquivalentTo(checkpoint.Keys);
        index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64()
            .Should().Be(checkpoint.Keys.Sum(k => checkpoint.Entry(k).End - checkpoint.Entry(k).Begin));
        keys.Should().Contain("pos_embed.pos_embed", "the release stores the fixed position table");
    }

    [Fact]
    public void The_pipeline_loads_every_component_by_name_and_generates_a_finite_image_in_bf16()
    {
        var components = PipelineComponents.FromDiffusersFolder(_folder.Path);
        var pipeline = new StableDiffusion3Pipeline(components, ScalarType.BFloat16);
        using var result = pipeline.Generate(new GenerationRequest { Prompt = "a red cube", Steps = 1, GuidanceScale = 3.5, Width = 64, Height = 64, MaxSequenceLength = 16 });
        result.Image.shape.Should().Equal(1, 3, 64, 64);
        result.Image.isfinite().all().item<bool>().Should().BeTrue();
        result.Image.std().item<float>().Should().BeGreaterThan(0);
    }

    [Fact]
    public void The_tokenizer_folders_encode_like_the_shipped_tokenizers()
    {
        var fromFolder = TokenizerSet.FromDiffusersFolder(_folder.Path);
        var shipped = TokenizerSet.Default();
        foreach (var prompt in new[] { "a photo of an astronaut riding a horse on the moon", "Hello!! <|endoftext|> wörld 123" })
        {
            fromFolder.ClipL.Encode(prompt).Should().Equal(shipped.ClipL.Encode(prompt), prompt);
            fromFolder.ClipG.Encode(prompt).Should().Equal(shipped.ClipG.Encode(prompt), prompt);
            fromFolder.T5.Encode(prompt).Should().Equal(shipped.T5.Encode(prompt), prompt);
        }
    }

    [Fact]
    public void Weights_follow_the_random_recipe_and_depend_only_on_seed_and_name()
    {
        using var checkpoint = Checkpoint.Open(Path.Combine(_folder.Path, "text_encoder", "model.safetensors.index.json"));
        using var weight = checkpoint.Read("text_model.encoder.layers.0.mlp.fc1.weight");
        using var norm = checkpoint.Read("text_model.final_layer_norm.weight");
        weight.dtype.Should().Be(ScalarType.BFloat16);
        using var generator = RandomInit.ForTensor(3, "text_encoder/text_model.encoder.layers.0.mlp.fc1.weight");
        using var expected = RandomInit.Values("text_model.encoder.layers.0.mlp.fc1.weight", weight.shape, generator);
        weight.to(float32).allclose(expected.to(ScalarType.BFloat16).to(float32), rtol: 0, atol: 0).Should().BeTrue();
        norm.to(float32).mean().item<float>().Should().BeApproximately(1f, 0.05f, "norm scales are 1 + 0.1·N(0, 1)");
    }
}

public sealed class RandomInitTests
{
    [Theory]
    [InlineData(1000, 16)]
    [InlineData(4099, 64)]
    public void Drawing_in_pieces_gives_the_values_of_one_draw(long rows, long pieces)
    {
        using var one = RandomInit.Values("w", [rows, 7], new Generator(5));
        using var inPieces = RandomInit.ValuesIn(ScalarType.BFloat16, "w", [rows, 7], new Generator(5), pieceElements: pieces);
        inPieces.to(float32).allclose(one.to(ScalarType.BFloat16).to(float32), rtol: 0, atol: 0).Should().BeTrue();
    }
}

public sealed class ShardedSafetensorsWriterTests
{
    static TensorSpec Spec(string name, long elements) => new(name, ScalarType.Float32, [elements]);

    [Fact]
    public void Shards_fill_in_order_and_an_oversized_tensor_gets_its_own()
    {
        var plan = ShardedSafetensorsWriter.Plan("model", [Spec("a", 10), Spec("b", 10), Spec("big", 100), Spec("c", 5)], maxShardBytes: 80);
        plan.Select(p => p.File).Should().Equal("model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors");
        plan.Select(p => string.Join(",", p.Tensors.Select(t => t.Name))).Should().Equal("a,b", "big", "c");
    }

    [Fact]
    public void A_checkpoint_within_the_limit_is_one_file_without_an_index()
    {
        using var dir = new TempDirectory();
        var path = ShardedSafetensorsWriter.Write(dir.Path, "model", [Spec("a", 4), Spec("b", 3)], 1 << 20, s => arange(s.Shape[0], float32));
        Path.GetFileName(path).Should().Be("model.safetensors");
        using var checkpoint = Checkpoint.Open(path);
        checkpoint.Read("b").data<float>().ToArray().Should().Equal(0f, 1f, 2f);
    }

    [Fact]
    public void Values_of_the_wrong_shape_are_refused_and_leave_no_complete_looking_file()
    {
        using var dir = new TempDirectory();
        var act = () => ShardedSafetensorsWriter.Write(dir.Path, "model", [Spec("a", 4)], 1 << 20, _ => zeros(5));
        act.Should().Throw<InvalidOperationException>().WithMessage("*'a'*");
        File.Exists(dir.File("model.safetensors")).Should().BeFalse();
    }
}
