using Sd35.Mesh;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// Stopping a generation on a mesh: only the lead sees the cancellation token, and no device may stop alone, inside
/// a collective the others wait in. So after every denoising step each device receives the lead's answer to "stop
/// now?" (a one-element broadcast over all devices) and all stop after the same step.
/// </summary>
static class StepStopAgreement
{
    /// <summary>
    /// The step callback of one device: <paramref name="report"/> (the lead's progress), then the agreement, which
    /// throws <see cref="GenerationCancelledException"/> on every device once the lead's token is set. Without a
    /// cancellable token there is nothing to agree on and no collective is added.
    /// </summary>
    public static Action<int, Tensor, double>? After(Action<int, Tensor, double>? report, CancellationToken cancellation,
        IProcessGroup everyone, bool lead, int leadRank)
    {
        if (!cancellation.CanBeCanceled) return report;
        return (step, latents, seconds) =>
        {
            report?.Invoke(step, latents, seconds);
            if (Agreed(lead && cancellation.IsCancellationRequested, everyone, leadRank)) throw new GenerationCancelledException(step + 1);
        };
    }

    static bool Agreed(bool leadSaysStop, IProcessGroup everyone, int leadRank)
    {
        if (everyone.Size == 1) return leadSaysStop;
        return everyone.BroadcastValues([leadSaysStop ? 1 : 0], leadRank)[0] != 0;
    }
}
