using Sd35.Errors;
using System.Text;
using FluentAssertions;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tests.Tensors.Checkpoints;

public class SafetensorsTests
{
    static void WriteRaw(string path, string headerJson, int dataBytes)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes((ulong)header.Length));
        stream.Write(header);
        stream.Write(new byte[dataBytes]);
    }

    [Fact]
    public void Writer_and_reader_round_trip_every_dtype()
    {
        using var dir = new TempDirectory();
        var path = dir.File("t.safetensors");
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = randn(3, 4),
            ["bf16"] = randn(5).to(bfloat16),
            ["i64"] = arange(7, dtype: int64),
            ["empty"] = zeros(0, 3),
        };
        SafetensorsWriter.Write(path, tensors);
        using var file = SafetensorsFile.Open(path);
        file.Keys.Should().BeEquivalentTo(tensors.Keys);
        foreach (var (key, expected) in tensors)
        {
            using var actual = file.Read(key);
            actual.dtype.Should().Be(expected.dtype);
            actual.shape.Should().Equal(expected.shape);
            actual.Equals(expected).Should().BeTrue(key);
        }
    }

    [Fact]
    public void ReadInto_converts_dtype_on_the_way()
    {
        using var dir = new TempDirectory();
        var path = dir.File("t.safetensors");
        var source = randn(4, 4);
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["w"] = source });
        using var file = SafetensorsFile.Open(path);
        using var target = empty(4, 4, bfloat16);
        file.ReadInto("w", target);
        target.to(float32).allclose(source, rtol: 1e-2, atol: 1e-2).Should().BeTrue();
    }

    const string F32x2At0 = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    [Theory]
    [InlineData("not json", null, "not valid JSON")]
    [InlineData("[1,2]", null, "not a JSON object")]
    [InlineData("\"text\"", null, "not a JSON object")]
    [InlineData("{\"w\":{\"dtype\":\"F7\",\"shape\":[2],\"data_offsets\":[0,8]}}", "w", "unknown dtype 'F7'")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "w", "shape [3] × 4 bytes (F32) = 12 bytes, but data_offsets span 8 bytes")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "w", "outside the data section")]
    [InlineData("{" + F32x2At0 + ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "b", "overlap tensor 'a'")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", "w", "invalid shape dimension -1")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", "w", "invalid shape dimension")]
    [InlineData("{" + F32x2At0 + "," + F32x2At0 + "}", "a", "appears twice")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "w", "hole of 4 bytes after offset 0")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", null, "4 bytes after the last tensor")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", "w", "out of order")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", "w", "data_offsets is not a pair of integers")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", "w", "data_offsets is not a pair of integers")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", "w", "overflows")]
    [InlineData("{\"w\":[1]}", "w", "not an object")]
    [InlineData("{\"__metadata__\":{\"format\":1}," + F32x2At0 + "}", null, "__metadata__ value for 'format' is not a string")]
    public void Invalid_headers_are_checkpoint_errors_naming_the_file_and_key(string header, string? key, string expected)
    {
        using var dir = new TempDirectory();
        var path = dir.File("bad.safetensors");
        WriteRaw(path, header, dataBytes: 8);
        var act = () => SafetensorsFile.Open(path);
        var error = act.Should().Throw<CheckpointException>().Which;
        error.Message.Should().Contain(path).And.Contain(expected);
        error.File.Should().Be(path);
        error.Key.Should().Be(key);
    }

    [Fact]
    public void Header_that_is_not_utf8_is_refused()
    {
        using var dir = new TempDirectory();
        var path = dir.File("bad.safetensors");
        byte[] header = [.. Encoding.UTF8.GetBytes("{\"w\xC3"), 0xFF, .. Encoding.UTF8.GetBytes("\":{}}")];
        using (var stream = File.Create(path))
        {
            stream.Write(BitConverter.GetBytes((ulong)header.Length));
            stream.Write(header);
        }
        var act = () => SafetensorsFile.Open(path);
        act.Should().Throw<CheckpointException>().Which.Message.Should().Contain(path).And.Contain("not valid UTF-8");
    }

    [Fact]
    public void Header_length_beyond_the_formats_100_MB_limit_is_refused_without_reading_it()
    {
        using var dir = new TempDirectory();
        var path = dir.File("huge.safetensors");
        using (var stream = File.Create(path))
        {
            stream.Write(BitConverter.GetBytes((ulong)SafetensorsHeader.MaxHeaderBytes + 1));
            stream.Write("{}"u8);
        }
        var act = () => SafetensorsFile.Open(path);
        act.Should().Throw<CheckpointException>().Which.Message.Should().Contain(path).And.Contain("exceeds the format's limit of 100000000 bytes");
    }

    [Fact]
    public void Zero_sized_tensors_and_padding_spaces_are_accepted()
    {
        using var dir = new TempDirectory();
        var path = dir.File("ok.safetensors");
        WriteRaw(path, "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}," + F32x2At0 + "}     ", dataBytes: 8);
        using var file = SafetensorsFile.Open(path);
        file.Keys.Should().BeEquivalentTo(["e", "a"]);
    }

    [Fact]
    public void Truncated_file_is_an_error_naming_the_file()
    {
        using var dir = new TempDirectory();
        var path = dir.File("t.safetensors");
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["w"] = randn(64) });
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^10]);
        var act = () => SafetensorsFile.Open(path);
        act.Should().Throw<CheckpointException>().Which.Message.Should().Contain(path).And.Contain("truncated");

        File.WriteAllBytes(path, bytes[..5]);
        act.Should().Throw<CheckpointException>().Which.Message.Should().Contain(path);
    }

    [Theory]
    [InlineData("model.bin")]
    [InlineData("model.ckpt")]
    [InlineData("model.pt")]
    public void Pickle_checkpoints_are_refused_with_the_reason(string name)
    {
        using var dir = new TempDirectory();
        var path = dir.File(name);
        File.WriteAllBytes(path, [0x80, 0x02]);
        var act = () => Checkpoint.Open(path);
        act.Should().Throw<CheckpointException>().Which.Message.Should().Contain(path).And.Contain("execute code");
    }

    [Fact]
    public void Model_folder_with_only_pickle_weights_is_refused()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("config.json"), "{}");
        File.WriteAllBytes(dir.File("diffusion_pytorch_model.bin"), [0x80]);
        var act = () => new ModelFolder(dir.Path).OpenCheckpoint();
        act.Should().Throw<CheckpointException>().Which.Message.Should().Contain("diffusion_pytorch_model.bin");
    }
}
