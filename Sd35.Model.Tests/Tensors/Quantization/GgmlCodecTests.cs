using FluentAssertions;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Tensors.Quantization;

/// <summary>
/// The block codec against <see cref="ReferenceBlocks"/> (scalar loops from the format description), data-driven over
/// every 2-D weight of the tiny goldens whose rows are whole blocks, plus blocks built to hit the rounding edges
/// (exact halves, ties in magnitude, all-zero blocks, a lone extreme).
/// </summary>
public sealed class GgmlCodecTests
{
    public static TheoryData<GgmlType> Types() => [.. GgmlCodec.Supported];

    /// <summary>Every golden weight file under fixtures/reference, each 2-D tensor with whole-block rows, as float32.</summary>
    static IEnumerable<(string Name, Tensor Values)> GoldenWeights()
    {
        var files = Directory.EnumerateFiles(RepoPaths.Fixtures("reference"), "*.safetensors", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) is "model.safetensors" or "diffusion_pytorch_model.safetensors").Order();
        foreach (var path in files)
        {
            using var file = SafetensorsFile.Open(path);
            foreach (var key in file.Keys.Order())
            {
                var entry = file.Entry(key);
                if (entry.Shape.Length == 2 && entry.Shape[1] % 32 == 0 && entry.Shape[0] * entry.Shape[1] <= 1 << 20)
                    yield return ($"{Path.GetRelativePath(RepoPaths.Fixtures(), path)}:{key}", file.Read(key).to(ScalarType.Float32));
            }
        }
    }

    /// <summary>Blocks that probe the rounding rules: halves of the scale, sign ties, zeros, tiny and huge values.</summary>
    static Tensor EdgeBlocks()
    {
        var rows = new List<float[]>
        {
            new float[32],                                                              // all zero: d = 0
            Enumerable.Range(0, 32).Select(i => (i - 16) * 0.5f).ToArray(),            // exact halves of the step
            Enumerable.Range(0, 32).Select(i => i % 2 == 0 ? 3f : -3f).ToArray(),      // ties in magnitude, first positive
            Enumerable.Range(0, 32).Select(i => i % 2 == 0 ? -3f : 3f).ToArray(),      // ties in magnitude, first negative
            Enumerable.Range(0, 32).Select(i => i == 7 ? 1e4f : 1e-3f * i).ToArray(),  // one extreme value
            Enumerable.Range(0, 32).Select(i => 1e-6f * (i - 10)).ToArray(),           // scales in fp16's subnormal range
            Enumerable.Range(0, 32).Select(i => 2.5f).ToArray(),                        // constant block
            Enumerable.Range(0, 32).Select(i => (float)Math.Sin(i) * 127f / 127.5f).ToArray(),
        };
        return tensor(rows.SelectMany(r => r).ToArray(), [rows.Count, 32]);
    }

    static float[] Floats(Tensor t) => t.to(ScalarType.Float32).contiguous().data<float>().ToArray();
    static byte[] Bytes(Tensor t) => t.contiguous().data<byte>().ToArray();

    [Theory]
    [MemberData(nameof(Types))]
    public void Quantize_writes_the_reference_blocks(GgmlType type)
    {
        int checkedTensors = 0;
        foreach (var (name, values) in GoldenWeights().Append(("edge blocks", EdgeBlocks())))
        {
            using var blocks = GgmlCodec.Quantize(values, type);
            var expected = ReferenceBlocks.Quantize(type, Floats(values));
            Bytes(blocks).Should().Equal(expected, $"{type} blocks of {name}");
            checkedTensors++;
        }
        checkedTensors.Should().BeGreaterThan(10, "the goldens hold many weights with whole-block rows");
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Dequantize_equals_the_reference_dequantizer_bit_for_bit(GgmlType type)
    {
        foreach (var (name, values) in GoldenWeights().Append(("edge blocks", EdgeBlocks())))
        {
            // The reference's own blocks, so this checks the reading apart from the writing.
            var bytes = ReferenceBlocks.Quantize(type, Floats(values));
            using var weight = QuantizedWeight.FromBlocks(type, values.shape, tensor(bytes));
            using var actual = weight.Dequantize();
            var expected = ReferenceBlocks.Dequantize(type, bytes);
            Floats(actual).Select(BitConverter.SingleToInt32Bits).Should().Equal(expected.Select(BitConverter.SingleToInt32Bits), $"{type} values of {name}");
            actual.shape.Should().Equal(values.shape);
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Dequantize_to_bf16_is_the_float32_values_rounded_once(GgmlType type)
    {
        using var weight = QuantizedWeight.Quantize(EdgeBlocks(), type);
        using var wide = weight.Dequantize();
        using var narrow = weight.Dequantize(ScalarType.BFloat16);
        narrow.dtype.Should().Be(ScalarType.BFloat16);
        narrow.Equals(wide.to(ScalarType.BFloat16)).Should().BeTrue();
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 1.0 / 127 / 2)]
    [InlineData(GgmlType.Q4_0, 1.0 / 8)] // a full step: +amax is clipped to level 7 when the extreme is −amax
    [InlineData(GgmlType.Q4_1, 1.0 / 15 / 2)]
    public void Round_trip_error_is_within_the_step(GgmlType type, double halfStep)
    {
        manual_seed(3);
        using var values = randn(64, 256);
        using var weight = QuantizedWeight.Quantize(values, type);
        using var back = weight.Dequantize();
        // Per block: |error| ≤ half a step of the block's range, plus the fp16 rounding of the scale (the 1.2).
        var range = values.reshape(-1, 32).abs().amax([1], keepdim: true) * (type == GgmlType.Q4_1 ? 2 : 1);
        var error = (back - values).reshape(-1, 32).abs();
        (error <= range * (halfStep * 1.2) + 1e-6).all().item<bool>().Should().BeTrue();
    }

    [Theory]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q6_K)]
    [InlineData(GgmlType.Q8_1)]
    [InlineData(GgmlType.F16)]
    public void Unsupported_types_are_refused_by_name(GgmlType type)
    {
        var act = () => QuantizedWeight.Quantize(zeros(2, 256), type);
        act.Should().Throw<NotSupportedException>().WithMessage($"*{type}*supported: Q8_0, Q5_0, Q5_1, Q4_0, Q4_1*");
    }

    [Fact]
    public void Rows_that_are_not_whole_blocks_are_refused()
    {
        var act = () => GgmlCodec.Quantize(zeros(4, 48), GgmlType.Q8_0);
        act.Should().Throw<ArgumentException>().WithMessage("*row length 48*multiple of 32*");
    }

    [Fact]
    public void Blocks_of_the_wrong_size_are_refused_with_both_sizes()
    {
        var act = () => QuantizedWeight.FromBlocks(GgmlType.Q4_0, [4, 64], zeros(4 * 2 * 18 - 1, dtype: ScalarType.Byte));
        act.Should().Throw<ArgumentException>().WithMessage("*[4, 64]*144 bytes*143*");
    }
}
