namespace Sd35.Mesh;

/// <summary>
/// Attention heads split by whole heads over a tensor-parallel group: heads that the group size does not divide are
/// padded with zero heads up to the next multiple (38 heads on tp = 4 → 40, ten per rank). The parallel config's
/// checks and the attention layers' shapes both read it here.
/// </summary>
static class HeadPadding
{
    /// <summary>ceil(heads / tp) · tp.</summary>
    public static int Padded(int heads, int tp) => (heads + tp - 1) / tp * tp;

    /// <summary>Heads each rank computes, padding included.</summary>
    public static int PerRank(int heads, int tp) => Padded(heads, tp) / tp;

    public static bool IsNeeded(int heads, int tp) => heads % tp != 0;
}
