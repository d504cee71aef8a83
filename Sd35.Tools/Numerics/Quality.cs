using static TorchSharp.torch;

namespace Sd35.Tools.Numerics;

/// <summary>
/// How close an output is to its reference, computed in float64 as the reference system's
/// <c>assert_quality</c> does: Pearson correlation, maximum absolute error and relative RMSE.
/// </summary>
public sealed record QualityReport(double Pcc, double MaxAbsError, double RelativeRmse, double MaxAbsReference, bool Finite)
{
    public override string ToString() =>
        $"PCC {Pcc:F7}, max abs error {MaxAbsError:E3} (max |reference| {MaxAbsReference:E3}, ratio {MaxAbsError / Math.Max(MaxAbsReference, double.Epsilon):E3}), relative RMSE {RelativeRmse:E3}{(Finite ? "" : ", NON-FINITE VALUES")}";
}

public static class Quality
{
    public static QualityReport Compare(Tensor reference, Tensor actual)
    {
        // Shapes, not element counts: a transposed or mis-laid-out result with the right count must not be compared flat.
        if (!reference.shape.SequenceEqual(actual.shape))
            throw new ArgumentException($"Shapes differ: reference [{string.Join(", ", reference.shape)}], actual [{string.Join(", ", actual.shape)}].");
        using var scope = NewDisposeScope();
        var r = reference.detach().cpu().to(float64).flatten();
        var a = actual.detach().cpu().to(float64).flatten();
        bool finite = r.isfinite().all().item<bool>() && a.isfinite().all().item<bool>();
        double maxAbsRef = r.abs().max().item<double>();
        double maxAbsErr = (r - a).abs().max().item<double>();
        var rc = r - r.mean();
        var ac = a - a.mean();
        double denom = Math.Sqrt(rc.square().sum().item<double>() * ac.square().sum().item<double>());
        double cov = (rc * ac).sum().item<double>();
        // Two constant tensors correlate perfectly only when they are equal.
        double pcc = denom == 0 ? (maxAbsErr == 0 ? 1.0 : 0.0) : cov / denom;
        double std = r.std().item<double>();
        double rmse = Math.Sqrt((r - a).square().mean().item<double>());
        double relRmse = std == 0 ? (rmse == 0 ? 0 : double.PositiveInfinity) : rmse / std;
        if (!finite) pcc = double.NaN;
        return new QualityReport(pcc, maxAbsErr, relRmse, maxAbsRef, finite);
    }

    /// <summary>
    /// Throws unless PCC ≥ <paramref name="minPcc"/> and max |error| ≤ <paramref name="maxAbsErrorRelative"/> ×
    /// max |reference|; NaN or Inf always fails. The message carries every figure.
    /// </summary>
    public static QualityReport AssertClose(Tensor reference, Tensor actual, double minPcc, double maxAbsErrorRelative, string what)
    {
        var report = Compare(reference, actual);
        bool ok = report.Finite && report.Pcc >= minPcc && report.MaxAbsError <= maxAbsErrorRelative * report.MaxAbsReference;
        if (!ok)
            throw new QualityException($"{what}: {report}; required PCC ≥ {minPcc} and max abs error ≤ {maxAbsErrorRelative:E1} × max |reference|.");
        return report;
    }
}

public sealed class QualityException(string message) : Exception(message);
