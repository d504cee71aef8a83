namespace Sd35.Tests.TestSupport;

/// <summary>
/// Tests that measure this process's peak memory (<see cref="PeakMemory"/>) run alone: the high-water mark is
/// process-wide, so a test running beside them would be counted in their peak.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryMeasurementCollection
{
    public const string Name = "Peak memory measurements";
}
