namespace Sd35.Pipeline;

/// <summary>
/// A point inside the denoising loop where a test program can act; no product program installs anything, and then
/// the loop only reads a null. Fault injection (Sd35.Tools' <c>FaultInjection</c>, installed by the test host and
/// Sd35.MpiHost) uses it to make one rank fail before a given step, so tests can check that a failing rank ends the
/// whole run promptly on every backend.
/// </summary>
public static class DenoisingHooks
{
    /// <summary>Called on every rank before each denoising step with the step's index and the rank's device id.</summary>
    public static Action<int, int>? BeforeStep { get; set; }
}
