using System.Buffers.Binary;
using System.Text;
using FluentAssertions;
using Sd35.Errors;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Checkpoints.Layouts;
using Sd35.Tensors.Gguf;
using Sd35.Tensors.Quantization;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Tensors.Formats;

/// <summary>The GGUF reader against files its writer makes, and one refusal per way a GGUF file can be broken.</summary>
public class GgufTests
{
    [Fact]
    public void Round_trips_dense_tensors_metadata_of_every_type_and_raw_blocks()
    {
        using var dir = new TempDirectory();
        var path = dir.File("t.gguf");
        var weight = arange(0, 64 * 3, dtype: ScalarType.Float32).reshape(3, 64) / 7;
        var blocks = randint(0, 256, [3, 2 * 34], dtype: ScalarType.Byte);
        var metadata = new Dictionary<string, object>
        {
            ["general.architecture"] = "sd3", ["u8"] = (byte)1, ["i8"] = (sbyte)-1, ["u16"] = (ushort)2, ["i16"] = (short)-2,
            ["u32"] = 3u, ["i32"] = -3, ["f32"] = 1.5f, ["bool"] = true, ["u64"] = 4ul, ["i64"] = -4L, ["f64"] = 2.5,
            ["strings"] = new GgufArray(GgufValueType.String, ["a", "bc"]), ["empty"] = new GgufArray(GgufValueType.Int32, []),
        };
        GgufWriter.Write(path, [
            new("w", GgmlType.F32, [3, 64], () => weight.alias()),
            new("h", GgmlType.BF16, [3, 64], () => weight.alias()),
            new("q", GgmlType.Q8_0, [3, 64], () => blocks.alias()),
        ], metadata);

        using var file = GgufFile.Open(path);
        file.Header.Architecture.Should().Be("sd3");
        file.Header.Metadata.Should().BeEquivalentTo(metadata);
        file.Keys.Should().Equal("w", "h", "q");
        file.Read("w").Equals(weight).Should().BeTrue();
        file.Read("h").Equals(weight.to(ScalarType.BFloat16)).Should().BeTrue();
        var q = file.Entry("q");
        (q.Quantized, q.Shape).Should().Be((GgmlType.Q8_0, q.Shape));
        q.Shape.Should().Equal(3, 64);
        file.Read("q").Equals(blocks).Should().BeTrue();
        var act = () => file.ReadInto("q", zeros(3, 64));
        act.Should().Throw<CheckpointException>().WithMessage("*'q'*Q8_0 blocks*");
    }

    [Fact]
    public void A_quantized_tensor_where_the_model_holds_a_plain_float_parameter_is_expanded_into_it()
    {
        // A parameter that cannot hold blocks (here a plain nn.Linear's) gets their values; blocks where the model needs
        // an integer dtype are refused (GgufPipelineTests).
        using var dir = new TempDirectory();
        var path = dir.File("t.gguf");
        manual_seed(4);
        var values = randn(4, 32);
        using var blocks = QuantizedWeight.Quantize(values, GgmlType.Q4_0);
        GgufWriter.Write(path, [new("weight", GgmlType.Q4_0, [4, 32], () => blocks.Blocks.clone())]);
        using var checkpoint = Checkpoint.Open(path);
        using var linear = nn.Linear(32, 4, hasBias: false);
        CheckpointLoader.Load(linear, checkpoint);
        using var expected = blocks.Dequantize(ScalarType.Float32);
        linear.weight!.Equals(expected).Should().BeTrue();
    }

    public static TheoryData<string, string> Breakages() => new()
    {
        { "magic", "*wrong magic*" },
        { "version", "*version 7*" },
        { "truncated-header", "*truncated*" },
        { "truncated-data", "*outside the data section*" },
        { "overlap", "*overlaps*" },
        { "unknown-type", "*unknown or unsupported ggml type 99*" },
        { "row-not-whole-blocks", "*row length 40*not a multiple*Q8_0*" },
        { "misaligned", "*not a multiple of the alignment*" },
        { "duplicate-key", "*appears twice*" },
        { "huge-array", "*runs past the end*" },
    };

    [Theory]
    [MemberData(nameof(Breakages))]
    public void A_broken_file_is_refused_in_one_line_naming_the_file(string breakage, string message)
    {
        using var dir = new TempDirectory();
        var path = dir.File($"{breakage}.gguf");
        File.WriteAllBytes(path, Broken(breakage));
        var act = () => Checkpoint.Open(path);
        var error = act.Should().Throw<CheckpointException>().WithMessage(message).Which;
        error.Message.Should().StartWith(path).And.NotContain("\n");
    }

    /// <summary>A small valid file (two F32 tensors of 32 values, 64 apart) with one thing broken.</summary>
    static byte[] Broken(string breakage)
    {
        var header = new MemoryStream();
        var w = new BinaryWriter(header);
        void Str(string s) { var b = Encoding.UTF8.GetBytes(s); w.Write((ulong)b.Length); w.Write(b); }
        w.Write(breakage == "magic" ? 0x46554746u : GgufHeader.Magic);
        w.Write(breakage == "version" ? 7u : 3u);
        w.Write(2ul);
        w.Write(breakage == "duplicate-key" ? 2ul : 1ul);
        Str("general.architecture"); w.Write((uint)GgufValueType.String); Str("sd3");
        if (breakage == "duplicate-key") { Str("general.architecture"); w.Write((uint)GgufValueType.String); Str("sd3"); }
        if (breakage == "huge-array") { header.SetLength(header.Length - 3 - 8 - 4); w.Write((uint)GgufValueType.Array); w.Write((uint)GgufValueType.UInt8); w.Write(1ul << 40); }
        (string Name, ulong Row, uint Type, ulong Offset)[] tensors =
        [
            ("a", breakage == "row-not-whole-blocks" ? 40ul : 32ul, breakage == "unknown-type" ? 99u : breakage == "row-not-whole-blocks" ? (uint)GgmlType.Q8_0 : 0u, 0ul),
            ("b", 32ul, 0u, breakage switch { "overlap" => 96ul, "truncated-data" => 4096ul, "misaligned" => 130ul, _ => 128ul }),
        ];
        foreach (var (name, row, type, offset) in tensors)
        {
            Str(name); w.Write(2u); w.Write(row); w.Write(1ul); w.Write(type); w.Write(offset);
        }
        w.Flush();
        var bytes = header.ToArray().ToList();
        while (bytes.Count % 32 != 0) bytes.Add(0);
        bytes.AddRange(new byte[256]);
        return breakage == "truncated-header" ? bytes.Take(40).ToArray() : bytes.ToArray();
    }

    [Fact]
    public void A_file_of_no_known_layout_lists_what_was_expected()
    {
        using var dir = new TempDirectory();
        var path = dir.File("unknown.safetensors");
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["model.something.weight"] = zeros(2, 2) });
        var act = () => SingleFileCheckpoint.Open(path, ModelComponent.Transformer);
        act.Should().Throw<CheckpointException>().WithMessage("*holds no Transformer*model.diffusion_model.joint_blocks*joint_blocks*transformer_blocks*model.something.weight*");
    }

    [Fact]
    public void A_gguf_of_another_architecture_is_refused_by_its_key()
    {
        using var dir = new TempDirectory();
        var path = dir.File("flux.gguf");
        GgufWriter.Write(path, [new("joint_blocks.0.x_block.attn.qkv.weight", GgmlType.F32, [6, 2], () => zeros(6, 2))],
            new Dictionary<string, object> { ["general.architecture"] = "flux" });
        var act = () => SingleFileCheckpoint.Open(path, ModelComponent.Transformer);
        act.Should().Throw<CheckpointException>().WithMessage("*general.architecture*'flux'*'sd3'*");
    }

    [Fact]
    public void Fp8_tensors_read_as_their_bytes_and_into_floats_as_their_exact_values()
    {
        using var dir = new TempDirectory();
        var path = dir.File("fp8.safetensors");
        // e4m3fn: 0x38 = 1.0, 0xC0 = -2.0, 0x01 = 2^-9 (smallest subnormal), 0x7E = 448 (largest); e5m2: 0x3C = 1.0, 0xC4 = -4.0.
        var json = """{"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"F8_E5M2","shape":[2],"data_offsets":[4,6]}}""";
        var header = Encoding.UTF8.GetBytes(json.PadRight((json.Length + 7) / 8 * 8));
        var bytes = new byte[8 + header.Length + 6];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        new byte[] { 0x38, 0xC0, 0x01, 0x7E, 0x3C, 0xC4 }.CopyTo(bytes, 8 + header.Length);
        File.WriteAllBytes(path, bytes);

        using var file = SafetensorsFile.Open(path);
        (file.Entry("a").Quantized, file.Entry("a").StorageName, file.Entry("b").Quantized).Should().Be((GgmlType.F8_E4M3, "F8_E4M3", GgmlType.F8_E5M2));
        // Read gives the bytes (a storable layer keeps them); ReadInto a float tensor gives the values.
        file.Read("a").data<byte>().ToArray().Should().Equal(0x38, 0xC0, 0x01, 0x7E);
        var values = zeros(4, dtype: ScalarType.Float16);
        file.ReadInto("a", values);
        values.to(ScalarType.Float32).data<float>().ToArray().Should().Equal(1f, -2f, MathF.Pow(2, -9), 448f);
        var target = zeros(2);
        file.ReadInto("b", target);
        target.data<float>().ToArray().Should().Equal(1f, -4f);
    }

    [Fact]
    public void Gguf_has_no_fp8_type_so_the_writer_refuses_one()
    {
        using var dir = new TempDirectory();
        var act = () => GgufWriter.Write(dir.File("fp8.gguf"), [new("a", GgmlType.F8_E4M3, [2, 32], () => zeros(2, 32, dtype: ScalarType.Byte))]);
        act.Should().Throw<NotSupportedException>().WithMessage("*'a'*GGUF has no F8_E4M3 type*");
        File.Exists(dir.File("fp8.gguf")).Should().BeFalse("refused before anything is written");
    }
}
