using Sd35.Tools.Numerics;
using static TorchSharp.torch;

namespace Sd35.Tests.TestSupport;

/// <summary>The numerical comparison every golden test uses: PCC in float64 and an absolute error bound.</summary>
public static class AssertQuality
{
    /// <summary>fp32 goldens: PCC ≥ 0.99999 and max abs error ≤ 1e-4 × max |reference|.</summary>
    public static QualityReport Fp32(Tensor reference, Tensor actual, string what) =>
        Quality.AssertClose(reference, actual, minPcc: 0.99999, maxAbsErrorRelative: 1e-4, what);

    public static QualityReport Close(Tensor reference, Tensor actual, double minPcc, double maxAbsErrorRelative, string what) =>
        Quality.AssertClose(reference, actual, minPcc, maxAbsErrorRelative, what);
}
