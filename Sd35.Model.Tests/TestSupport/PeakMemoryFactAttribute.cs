namespace Sd35.Tests.TestSupport;

/// <summary>
/// A fact that measures peak memory through Linux's <c>/proc</c> (<see cref="PeakMemory"/>): elsewhere it is reported
/// as skipped with the reason, rather than passing without measuring anything.
/// </summary>
public sealed class PeakMemoryFactAttribute : FactAttribute
{
    public PeakMemoryFactAttribute()
    {
        if (!PeakMemory.Available) Skip = "peak memory is measured through Linux's /proc/self/clear_refs, which this system lacks";
    }
}

/// <summary>The theory form of <see cref="PeakMemoryFactAttribute"/>.</summary>
public sealed class PeakMemoryTheoryAttribute : TheoryAttribute
{
    public PeakMemoryTheoryAttribute()
    {
        if (!PeakMemory.Available) Skip = "peak memory is measured through Linux's /proc/self/clear_refs, which this system lacks";
    }
}
