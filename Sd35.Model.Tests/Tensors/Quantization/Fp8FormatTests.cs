using FluentAssertions;
using Sd35.Tensors.Quantization;
using static TorchSharp.torch;

namespace Sd35.Tests.Tensors.Quantization;

/// <summary>
/// The fp8 expansion (<see cref="Fp8Format"/>) against the tests' own reading of the formats (<see cref="ReferenceFp8"/>)
/// for all 256 bytes, and the claim it rests on: every fp8 value is exact in fp16 and bf16, so expanding straight to
/// the compute dtype is expanding to fp32 and converting.
/// </summary>
public sealed class Fp8FormatTests
{
    static readonly byte[] AllBytes = Enumerable.Range(0, 256).Select(b => (byte)b).ToArray();

    /// <summary>Bit patterns, so NaNs and the sign of zero compare too (of two tensors made by one conversion).</summary>
    static byte[] BitsOf(Tensor t) => ByteView.As(t.contiguous(), ScalarType.Byte, t.numel() * t.element_size()).data<byte>().ToArray();

    [Theory]
    [InlineData(GgmlType.F8_E4M3)]
    [InlineData(GgmlType.F8_E5M2)]
    public void Every_byte_expands_to_the_value_the_format_describes(GgmlType format)
    {
        using var scope = NewDisposeScope();
        var expanded = Fp8Format.Expand(tensor(AllBytes), format, [16, 16], ScalarType.Float32);
        expanded.shape.Should().Equal(16, 16);
        var expected = AllBytes.Select(b => (float)ReferenceFp8.Value(format, b)).ToArray();
        // Bit patterns, so the sign of zero counts; a NaN's payload does not.
        static int[] Bits(IEnumerable<float> values) => values.Select(v => float.IsNaN(v) ? int.MinValue : BitConverter.SingleToInt32Bits(v)).ToArray();
        Bits(expanded.data<float>().ToArray()).Should().Equal(Bits(expected));
    }

    [Theory]
    [InlineData(GgmlType.F8_E4M3, ScalarType.Float16)]
    [InlineData(GgmlType.F8_E4M3, ScalarType.BFloat16)]
    [InlineData(GgmlType.F8_E5M2, ScalarType.Float16)]
    [InlineData(GgmlType.F8_E5M2, ScalarType.BFloat16)]
    public void Every_fp8_value_is_exact_in_the_half_precision_dtypes(GgmlType format, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var direct = Fp8Format.Expand(tensor(AllBytes), format, [256], dtype);
        var viaFp32 = Fp8Format.Expand(tensor(AllBytes), format, [256], ScalarType.Float32).to(dtype);
        BitsOf(direct).Should().Equal(BitsOf(viaFp32));
        var back = direct.to(ScalarType.Float64).data<double>().ToArray();
        for (int b = 0; b < 256; b++)
        {
            double value = ReferenceFp8.Value(format, (byte)b);
            if (double.IsNaN(value)) double.IsNaN(back[b]).Should().BeTrue($"byte 0x{b:X2}");
            else back[b].Should().Be(value, $"byte 0x{b:X2} in {dtype}");
        }
    }

    [Fact]
    public void Bytes_that_do_not_hold_the_shape_are_refused()
    {
        var act = () => Fp8Format.Expand(zeros(10, dtype: ScalarType.Byte), GgmlType.F8_E4M3, [3, 4], ScalarType.Float32);
        act.Should().Throw<ArgumentException>().WithMessage("*F8_E4M3*[10]*[3, 4]*");
    }
}
