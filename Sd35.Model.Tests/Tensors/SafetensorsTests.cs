using System.Text;
using FluentAssertions;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Tests.Tensors;

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

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[1,2]", "not a JSON object")]
    [InlineData("{\"w\":{\"dtype\":\"F7\",\"shape\":[2],\"data_offsets\":[0,8]}}", "unknown dtype 'F7'")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "shape [3] × 4 bytes = 12 but its span is 8 bytes")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "outside the data section")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "overlap")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", "invalid shape dimension")]
    public void Invalid_headers_are_errors_naming_the_file(string header, string expected)
    {
        using var dir = new TempDirectory();
        var path = dir.File("bad.safetensors");
        WriteRaw(path, header, dataBytes: 8);
        var act = () => SafetensorsFile.Open(path);
        act.Should().Throw<InvalidDataException>().Which.Message.Should().Contain(path).And.Contain(expected);
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
        act.Should().Throw<InvalidDataException>().Which.Message.Should().Contain(path).And.Contain("truncated");

        File.WriteAllBytes(path, bytes[..5]);
        act.Should().Throw<InvalidDataException>().Which.Message.Should().Contain(path);
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
        act.Should().Throw<NotSupportedException>().Which.Message.Should().Contain(path).And.Contain("execute code");
    }

    [Fact]
    public void Model_folder_with_only_pickle_weights_is_refused()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("config.json"), "{}");
        File.WriteAllBytes(dir.File("diffusion_pytorch_model.bin"), [0x80]);
        var act = () => new ModelFolder(dir.Path).OpenCheckpoint();
        act.Should().Throw<NotSupportedException>().Which.Message.Should().Contain("diffusion_pytorch_model.bin");
    }
}
