using Sd35.Errors;
using System.Text.Json;
using FluentAssertions;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tests.Tensors.Checkpoints;

public class CheckpointLoaderTests
{
    sealed class Tiny : nn.Module
    {
        public readonly TorchSharp.Modules.Linear proj = nn.Linear(3, 2);
        public readonly TorchSharp.Modules.LayerNorm norm = nn.LayerNorm(2);

        public Tiny() : base("Tiny") => RegisterComponents();
    }

    static Dictionary<string, Tensor> FullState() => new()
    {
        ["proj.weight"] = randn(2, 3),
        ["proj.bias"] = randn(2),
        ["norm.weight"] = randn(2),
        ["norm.bias"] = randn(2),
    };

    static string Save(TempDirectory dir, Dictionary<string, Tensor> state, string name = "m.safetensors")
    {
        var path = dir.File(name);
        SafetensorsWriter.Write(path, state);
        return path;
    }

    [Fact]
    public void Loads_every_tensor_by_name()
    {
        using var dir = new TempDirectory();
        var state = FullState();
        using var checkpoint = Checkpoint.Open(Save(dir, state));
        var model = new Tiny();
        CheckpointLoader.Load(model, checkpoint);
        var loaded = model.state_dict();
        loaded.Keys.Should().BeEquivalentTo(state.Keys);
        foreach (var (name, tensor) in state) loaded[name].Equals(tensor).Should().BeTrue($"{name} must hold the checkpoint's values");
    }

    [Fact]
    public void A_converting_read_in_staging_pieces_gives_the_whole_tensor_conversion()
    {
        // bf16 on disk into an fp32 parameter: converted through the staging piece: one whole piece and a partial last one.
        using var dir = new TempDirectory();
        long count = SafetensorsFile.StagingBytes / 2 + 12345;
        using var stored = randn(count).to(ScalarType.BFloat16);
        var path = Save(dir, new() { ["w"] = stored });
        using var checkpoint = Checkpoint.Open(path);
        using var target = empty(count);
        checkpoint.ReadInto("w", target);
        using var expected = stored.to(ScalarType.Float32);
        target.Equals(expected).Should().BeTrue("every piece must land at its own offset, converted exactly");
    }

    [Fact]
    public void A_tensor_larger_than_one_read_call_is_read_whole()
    {
        // Reads go 64 MiB at a time through views of the destination: each view must land at its own offset.
        using var dir = new TempDirectory();
        using var stored = arange(17_000_000 + 5, ScalarType.Int32).to(ScalarType.Float32).view(-1, 5);
        using var checkpoint = Checkpoint.Open(Save(dir, new() { ["big"] = stored }));
        using var read = checkpoint.Read("big");
        read.Equals(stored).Should().BeTrue("68 MB read in two calls must equal what was written");
        using var into = empty(stored.shape);
        checkpoint.ReadInto("big", into);
        into.Equals(stored).Should().BeTrue("the same straight into a parameter");
    }

    sealed class Wide : nn.Module<Tensor, Tensor>
    {
        public readonly TorchSharp.Modules.Linear a = nn.Linear(1024, 700);
        public readonly TorchSharp.Modules.Linear b = nn.Linear(700, 1030);

        public Wide() : base("Wide") => RegisterComponents();

        public override Tensor forward(Tensor x) => b.forward(a.forward(x));
    }

    [Fact]
    public void Parameters_read_directly_into_re_seated_storage_hold_the_checkpoint_and_compute_with_it()
    {
        // Tensors of a MiB and more are read by O_DIRECT into storage placed to match the file's block alignment and the
        // parameter is re-seated on it: the module's own fields must see the values, and the forward must use them.
        using var dir = new TempDirectory();
        var state = new Dictionary<string, Tensor>
        {
            ["a.weight"] = randn(700, 1024), ["a.bias"] = randn(700), ["b.weight"] = randn(1030, 700), ["b.bias"] = randn(1030),
        };
        using var checkpoint = Checkpoint.Open(Save(dir, state));
        var model = new Wide();
        CheckpointLoader.Load(model, checkpoint);
        model.a.weight!.Equals(state["a.weight"]).Should().BeTrue("the field holds the checkpoint's values");
        model.b.weight!.Equals(state["b.weight"]).Should().BeTrue("the field holds the checkpoint's values");
        model.a.bias!.Equals(state["a.bias"]).Should().BeTrue();
        using var x = randn(3, 1024);
        using var expected = nn.functional.linear(nn.functional.linear(x, state["a.weight"], state["a.bias"]), state["b.weight"], state["b.bias"]);
        using var actual = model.forward(x);
        actual.Equals(expected).Should().BeTrue("the forward computes with the loaded weights");
    }

    [Fact]
    public void Reading_tensors_out_of_file_order_gives_each_its_own_bytes()
    {
        // The loader reads ahead of a sequential reader; a lookup that jumps back or skips must still read its own range.
        using var dir = new TempDirectory();
        var state = Enumerable.Range(0, 6).ToDictionary(i => $"t{i}", i => randn(1000 + i));
        using var checkpoint = Checkpoint.Open(Save(dir, state));
        foreach (var key in new[] { "t3", "t0", "t5", "t1", "t1", "t4", "t2" })
        {
            using var read = checkpoint.Read(key);
            read.Equals(state[key]).Should().BeTrue(key);
        }
    }

    [Fact]
    public void A_model_folder_builds_its_model_without_initial_values()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("config.json"), "{}");
        Save(dir, FullState(), "model.safetensors");
        bool skippedWhileBuilding = false;
        using var model = new ModelFolder(dir.Path).Load(() =>
        {
            skippedWhileBuilding = Sd35.Layers.WeightInit.Skipped;
            return new Tiny();
        });
        skippedWhileBuilding.Should().BeTrue("every weight comes from the checkpoint, so none is initialised first");
        Sd35.Layers.WeightInit.Skipped.Should().BeFalse("the scope ends with the building");
    }

    [Fact]
    public void A_weight_left_unloaded_is_caught()
    {
        using var dir = new TempDirectory();
        var state = FullState();
        state.Remove("norm.bias");
        var path = Save(dir, state);
        using var checkpoint = Checkpoint.Open(path);
        var act = () => CheckpointLoader.Load(new Tiny(), checkpoint);
        act.Should().Throw<CheckpointException>().Which.Message.Should().Contain("missing keys").And.Contain("norm.bias").And.Contain(path).And.NotContain("\n", "an input error is one line");
    }

    [Fact]
    public void Unexpected_key_is_an_error_naming_file_and_key()
    {
        using var dir = new TempDirectory();
        var state = FullState();
        state["extra.weight"] = randn(1);
        var path = Save(dir, state);
        using var checkpoint = Checkpoint.Open(path);
        var act = () => CheckpointLoader.Load(new Tiny(), checkpoint);
        act.Should().Throw<CheckpointException>().Which.Message.Should().Contain("unexpected keys").And.Contain("extra.weight").And.Contain(path);
        CheckpointLoader.Load(new Tiny(), checkpoint, new LoadOptions { IgnoreUnexpected = k => k.StartsWith("extra.") });
    }

    [Fact]
    public void Shape_mismatch_names_the_key_and_both_shapes()
    {
        using var dir = new TempDirectory();
        var state = FullState();
        state["proj.weight"] = randn(2, 4);
        var path = Save(dir, state);
        using var checkpoint = Checkpoint.Open(path);
        var act = () => CheckpointLoader.Load(new Tiny(), checkpoint);
        act.Should().Throw<CheckpointException>().Which.Message.Should()
            .Contain("proj.weight").And.Contain("[2, 4]").And.Contain("[2, 3]").And.Contain(path);
    }

    [Fact]
    public void Aliases_accept_a_tensor_stored_under_another_name()
    {
        using var dir = new TempDirectory();
        var state = FullState();
        state["shared.weight"] = state["proj.weight"];
        state.Remove("proj.weight");
        using var checkpoint = Checkpoint.Open(Save(dir, state));
        var model = new Tiny();
        CheckpointLoader.Load(model, checkpoint, new LoadOptions { Aliases = new Dictionary<string, string[]> { ["proj.weight"] = ["shared.weight"] } });
        model.proj.weight!.Equals(state["shared.weight"]).Should().BeTrue();
    }

    [Fact]
    public void Sharded_checkpoints_load_through_their_index()
    {
        using var dir = new TempDirectory();
        var state = FullState();
        Save(dir, state.Where(kv => kv.Key.StartsWith("proj")).ToDictionary(), "part-1.safetensors");
        Save(dir, state.Where(kv => kv.Key.StartsWith("norm")).ToDictionary(), "part-2.safetensors");
        var index = new { metadata = new { }, weight_map = state.Keys.ToDictionary(k => k, k => k.StartsWith("proj") ? "part-1.safetensors" : "part-2.safetensors") };
        var indexPath = dir.File("model.safetensors.index.json");
        File.WriteAllText(indexPath, JsonSerializer.Serialize(index));
        using var checkpoint = Checkpoint.Open(indexPath);
        var model = new Tiny();
        CheckpointLoader.Load(model, checkpoint);
        model.norm.weight!.Equals(state["norm.weight"]).Should().BeTrue();
    }

    [Fact]
    public void Index_naming_a_missing_shard_is_an_error()
    {
        using var dir = new TempDirectory();
        var indexPath = dir.File("model.safetensors.index.json");
        File.WriteAllText(indexPath, "{\"weight_map\":{\"a\":\"gone.safetensors\"}}");
        var act = () => Checkpoint.Open(indexPath);
        act.Should().Throw<CheckpointException>().Which.Message.Should().Contain("gone.safetensors");
    }

    [Theory]
    [InlineData("../outside.safetensors")]
    [InlineData("/etc/outside.safetensors")]
    [InlineData("sub/../../outside.safetensors")]
    [InlineData("..")]
    public void Index_whose_shard_paths_leave_the_model_folder_is_refused(string shard)
    {
        using var dir = new TempDirectory();
        var model = Directory.CreateDirectory(dir.File("model")).FullName;
        Save(dir, FullState(), "outside.safetensors");                 // a real file, so only the path rule can refuse it
        var indexPath = Path.Combine(model, "model.safetensors.index.json");
        File.WriteAllText(indexPath, JsonSerializer.Serialize(new { weight_map = new Dictionary<string, string> { ["proj.weight"] = shard } }));
        var act = () => Checkpoint.Open(indexPath);
        act.Should().Throw<CheckpointException>().Which.Message.Should().Contain(indexPath).And.Contain(shard).And.Contain("leave the model folder");
    }

    [Theory]
    [InlineData("{\"weight_map\":{\"a\":3}}", "maps it to no file name")]
    [InlineData("{\"weight_map\":[]}", "no 'weight_map' object")]
    [InlineData("[]", "no 'weight_map' object")]
    [InlineData("{\"weight_map\":", "not valid JSON")]
    public void Malformed_index_is_a_checkpoint_error_naming_it(string json, string expected)
    {
        using var dir = new TempDirectory();
        var indexPath = dir.File("model.safetensors.index.json");
        File.WriteAllText(indexPath, json);
        var act = () => Checkpoint.Open(indexPath);
        act.Should().Throw<CheckpointException>().Which.Message.Should().Contain(indexPath).And.Contain(expected);
    }

    [Fact]
    public void Integer_tensor_for_a_float_parameter_is_a_dtype_mismatch()
    {
        using var dir = new TempDirectory();
        var state = FullState();
        state["norm.bias"] = zeros(state["norm.bias"].shape, int32);
        var path = Save(dir, state);
        using var checkpoint = Checkpoint.Open(path);
        var act = () => CheckpointLoader.Verify(new Tiny(), checkpoint);
        var error = act.Should().Throw<CheckpointException>().Which;
        error.Key.Should().Be("norm.bias");
        error.Message.Should().Contain("checkpoint dtype I32");
    }

    [Fact]
    public void Verify_matches_names_and_shapes_without_reading_weights()
    {
        using var dir = new TempDirectory();
        var state = FullState();
        state["proj.weight"] = randn(3, 3);
        var path = Save(dir, state);
        using var checkpoint = Checkpoint.Open(path);
        var act = () => CheckpointLoader.Verify(new Tiny(), checkpoint);
        act.Should().Throw<CheckpointException>().Which.Message.Should().Contain("'proj.weight'").And.Contain("checkpoint shape [3, 3]");
    }

    [Fact]
    public void Loads_real_transformer_golden_weights_file_header()
    {
        using var checkpoint = Checkpoint.Open(RepoPaths.Fixtures("reference", "transformer", "tiny", "diffusion_pytorch_model.safetensors"));
        checkpoint.Keys.Should().HaveCount(107).And.Contain("pos_embed.pos_embed");
        checkpoint.Entry("pos_embed.pos_embed").Shape.Should().Equal(1, 576, 64);
    }
}
