using System.Globalization;
using Sd35.Pipeline;

namespace Sd35.Tools.Faults;

/// <summary>
/// One injected failure: the rank of device <paramref name="Device"/> fails before denoising step <paramref name="Step"/>,
/// by throwing <see cref="InjectedFaultException"/> or, with <paramref name="KillsProcess"/>, by killing its own process
/// with SIGKILL (meaningful with one process per rank, under MPI). <paramref name="Origin"/> says where the plan came
/// from, for the error message.
/// </summary>
public sealed record FaultPlan(int Device, int Step, bool KillsProcess = false, string? Origin = null)
{
    /// <summary>The point's name in <c>SD35_FAULT_AT</c> and in the error: <c>step:&lt;i&gt;</c>.</summary>
    public string Point => $"step:{Step}";

    internal void StrikeIfDue(int step, int device)
    {
        if (device != Device || step != Step) return;
        if (KillsProcess) System.Diagnostics.Process.GetCurrentProcess().Kill();
        throw new InjectedFaultException($"fault injected on rank {device} at {Point}{(Origin is null ? "" : $" ({Origin})")}");
    }
}

/// <summary>
/// Test-only failure injection through the library's <see cref="DenoisingHooks"/>, for checking that a failing rank
/// ends the whole run promptly on every backend. A test installs a <see cref="FaultPlan"/> in its own process; a test
/// program started as processes (Sd35.MpiHost) installs the one its environment names:
/// <c>SD35_FAULT_RANK=&lt;device id&gt; SD35_FAULT_AT=step:&lt;i&gt;</c> (before denoising step i), with
/// <c>SD35_FAULT_KIND=kill</c> for SIGKILL instead of an exception.
/// </summary>
public static class FaultInjection
{
    public const string RankVariable = "SD35_FAULT_RANK";
    public const string PointVariable = "SD35_FAULT_AT";
    public const string KindVariable = "SD35_FAULT_KIND";

    /// <summary>Makes <paramref name="plan"/> fail its rank until the result is disposed, which puts the previous hook back.</summary>
    public static IDisposable Install(FaultPlan plan)
    {
        var previous = DenoisingHooks.BeforeStep;
        DenoisingHooks.BeforeStep = (step, device) =>
        {
            previous?.Invoke(step, device);
            plan.StrikeIfDue(step, device);
        };
        return new Restore(previous);
    }

    /// <summary>Installs the plan the environment names, if any, for the life of the process.</summary>
    public static void InstallFromEnvironment()
    {
        if (FromEnvironment(Environment.GetEnvironmentVariable) is { } plan) Install(plan);
    }

    /// <summary>
    /// The plan <c>SD35_FAULT_RANK</c>, <c>SD35_FAULT_AT</c> and <c>SD35_FAULT_KIND</c> describe; null when neither of
    /// the first two is set. A value that does not parse is an error naming the variable, not a fault silently left out.
    /// </summary>
    public static FaultPlan? FromEnvironment(Func<string, string?> variable)
    {
        string? rank = variable(RankVariable), point = variable(PointVariable), kind = variable(KindVariable);
        if (rank is null && point is null) return null;
        if (!int.TryParse(rank, NumberStyles.None, CultureInfo.InvariantCulture, out int device))
            throw new ArgumentException($"{RankVariable}='{rank}' is not a device id (with {PointVariable}='{point}')");
        if (point is null || !point.StartsWith("step:", StringComparison.Ordinal)
            || !int.TryParse(point.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int step))
            throw new ArgumentException($"{PointVariable}='{point}' is not a fault point; expected step:<i> (before denoising step i)");
        if (kind is not (null or "" or "throw" or "kill"))
            throw new ArgumentException($"{KindVariable}='{kind}' is not a fault kind; expected throw or kill");
        return new FaultPlan(device, step, KillsProcess: kind == "kill", Origin: $"{RankVariable}={rank}, {PointVariable}={point}");
    }

    sealed class Restore(Action<int, int>? previous) : IDisposable
    {
        public void Dispose() => DenoisingHooks.BeforeStep = previous;
    }
}

/// <summary>The failure <see cref="FaultInjection"/> raises.</summary>
public sealed class InjectedFaultException(string message) : Exception(message);
