using Sd35.Errors;
using Sd35.Mesh;
using FluentAssertions;
using Sd35.Models.T5;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using Xunit.Abstractions;
using static Sd35.Tests.Models.TextEncoderFixtures;
using static TorchSharp.torch;

namespace Sd35.Tests.Models.T5;

public class T5EncoderModelTests(ITestOutputHelper log)
{
    /// <summary>
    /// Closed form: the shared embedding; per block q/k/v/o (no biases), wi_0/wi_1/wo, two T5 LayerNorms; block 0's
    /// relative position table; the final LayerNorm.
    /// </summary>
    static long ExpectedParameters(T5Config c)
    {
        long d = c.DModel, inner = c.InnerDim, ff = c.DFf;
        long perBlock = 4 * d * inner + 3 * d * ff + 2 * d;
        return (long)c.VocabSize * d + c.NumLayers * perBlock + (long)c.RelativeAttentionNumBuckets * c.NumHeads + d;
    }

    [Fact]
    public void T5_xxl_preset_has_the_real_parameter_count()
    {
        const long expected = 4_762_310_656L;
        ExpectedParameters(T5Config.T5Xxl).Should().Be(expected);
        using var model = new T5EncoderModel(T5Config.T5Xxl, MeshRank.Single(Meta), ScalarType.BFloat16);
        ParameterCount(model).Should().Be(expected);
    }

    [Fact]
    public void Closed_form_count_matches_the_built_tiny_model_and_its_checkpoint()
    {
        var folder = new ModelFolder(T5Folder);
        var config = folder.ReadConfig<T5Config>();
        using var model = new T5EncoderModel(config);
        ParameterCount(model).Should().Be(ExpectedParameters(config));
        using var checkpoint = folder.OpenCheckpoint();
        // The checkpoint stores the tied embedding twice.
        long stored = checkpoint.Keys.Where(k => k != "encoder.embed_tokens.weight").Sum(k => checkpoint.Entry(k).Shape.Aggregate(1L, (a, b) => a * b));
        stored.Should().Be(ExpectedParameters(config));
    }

    [Fact]
    public void Config_reads_the_checkpoint_field_names()
    {
        var config = new ModelFolder(T5Folder).ReadConfig<T5Config>();
        config.Should().Be(new T5Config
        {
            ModelType = "t5", DModel = 64, DKv = 8, DFf = 64, NumLayers = 3, NumHeads = 4, FeedForwardProj = "gated-gelu", DenseActFnSetting = "gelu_new",
        });
        config.InnerDim.Should().Be(32);
    }

    [Fact]
    public void Gated_gelu_without_an_explicit_activation_means_the_tanh_gelu()
    {
        ModelConfig.Parse<T5Config>("""{"model_type": "t5", "feed_forward_proj": "gated-gelu"}""").DenseActFn.Should().Be("gelu_new");
        var act = () => ModelConfig.Parse<T5Config>("""{"model_type": "t5"}""");
        act.Should().Throw<ConfigException>().WithMessage("*$.feed_forward_proj*relu*gated*");
    }

    [Theory]
    // bidirectional, 32 buckets, max distance 128: 16 buckets per direction, 8 of them exact.
    [InlineData(0, 0)]
    [InlineData(-1, 1)]
    [InlineData(1, 17)]
    [InlineData(-7, 7)]
    [InlineData(7, 23)]
    [InlineData(-8, 8)]
    [InlineData(15, 16 + 8 + 1)]  // 8 + floor(log(15/8)/log(16)·8) = 8 + floor(1.81)
    [InlineData(16, 16 + 8 + 2)]  // log(2)/log(16)·8 = 2 exactly: a boundary
    [InlineData(-32, 12)]
    [InlineData(-64, 14)]         // log(8)/log(16)·8 = 6 exactly
    [InlineData(-127, 15)]        // 8 + floor(7.98)
    [InlineData(-128, 15)]
    [InlineData(1000, 31)]
    public void Relative_positions_fall_into_T5_buckets(long relative, long bucket)
    {
        using var position = tensor(new[] { relative });
        using var result = T5RelativePositionBuckets.Compute(position, bidirectional: true, numBuckets: 32, maxDistance: 128);
        result.item<long>().Should().Be(bucket);
    }

    [Fact]
    public void The_tied_embedding_loads_from_either_name()
    {
        var state = Golden.ReadAll(Path.Combine(T5Folder, "model.safetensors"));
        var io = Golden.ReadAll(Path.Combine(T5Folder, "io.safetensors"));
        foreach (var dropped in new[] { "shared.weight", "encoder.embed_tokens.weight" })
        {
            using var dir = new TempDirectory();
            SafetensorsWriter.Write(dir.File("model.safetensors"), state.Where(kv => kv.Key != dropped).ToDictionary());
            File.Copy(Path.Combine(T5Folder, "config.json"), dir.File("config.json"));
            using var model = T5EncoderModel.FromFolder(new ModelFolder(dir.Path));
            model.shared.weight.Equals(state["shared.weight"]).Should().BeTrue($"loaded without {dropped}");
            using var output = model.forward(io["input_ids"]);
            AssertQuality.Fp32(io["last_hidden_state"], output, $"without {dropped}");
        }
    }

    [Fact]
    public void Bf16_model_stays_close_to_the_fp32_reference()
    {
        var io = Golden.ReadAll(Path.Combine(T5Folder, "io.safetensors"));
        using var model = T5EncoderModel.FromFolder(new ModelFolder(T5Folder), dtype: ScalarType.BFloat16);
        using var output = model.forward(io["input_ids"]);
        output.dtype.Should().Be(ScalarType.BFloat16);
        // Measured: PCC 0.99903, max abs error 8.3 % of max |reference|. The tiny random T5 is sensitive to bf16
        // (its unscaled attention scores make the softmax sharp): rounding only the weights to bf16 and computing
        // in fp32 already gives 2.7 %. Hence the looser max-abs bound than CLIP's.
        log.WriteLine($"{AssertQuality.Close(io["last_hidden_state"], output, minPcc: 0.99, maxAbsErrorRelative: 0.15, "T5 bf16 last_hidden_state")}");
    }

    [Fact]
    public void Float16_is_refused_with_the_reason()
    {
        var act = () => new T5EncoderModel(T5Config.T5Xxl, MeshRank.Single(Meta), ScalarType.Float16);
        act.Should().Throw<ArgumentException>().WithMessage("*Float16*");
    }
}
