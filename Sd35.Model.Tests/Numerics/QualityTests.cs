using FluentAssertions;
using Sd35.Tools.Numerics;
using static TorchSharp.torch;

namespace Sd35.Tests.Numerics;

public class QualityTests
{
    [Fact]
    public void Identical_tensors_have_pcc_one_and_no_error()
    {
        var a = randn(100);
        var report = Quality.Compare(a, a.clone());
        report.Pcc.Should().BeApproximately(1.0, 1e-12);
        report.MaxAbsError.Should().Be(0);
    }

    [Fact]
    public void Pcc_is_computed_in_float64()
    {
        var a = tensor(new[] { 1.0f, 2.0f, 3.0f, 4.0f });
        var b = tensor(new[] { 1.0f, 2.0f, 3.0f, 5.0f });
        Quality.Compare(a, b).Pcc.Should().BeApproximately(0.9827076298239908, 1e-12);
    }

    [Fact]
    public void NaN_or_Inf_always_fails_and_the_message_has_every_figure()
    {
        var a = randn(10);
        var b = a.clone();
        b[3] = float.NaN;
        var act = () => Quality.AssertClose(a, b, 0.9, 1.0, "nan case");
        act.Should().Throw<QualityException>().Which.Message.Should()
            .Contain("nan case").And.Contain("PCC").And.Contain("max abs error").And.Contain("relative RMSE").And.Contain("NON-FINITE");
    }

    [Fact]
    public void A_shape_mismatch_with_the_same_element_count_is_an_error_naming_both_shapes()
    {
        var a = randn(2, 3);
        var act = () => Quality.Compare(a, a.reshape(3, 2));
        act.Should().Throw<ArgumentException>().WithMessage("Shapes differ: reference [2, 3], actual [3, 2].");
    }

    [Fact]
    public void Absolute_bound_fails_even_when_pcc_passes()
    {
        var a = randn(1000);
        var b = a * 1.01;
        var act = () => Quality.AssertClose(a, b, 0.99999, 1e-4, "scaled");
        act.Should().Throw<QualityException>();
    }
}
