using FluentAssertions;
using Sd35.Diagnostics;

namespace Sd35.Tests.Synthetic;

public sealed class ProcessMemoryTests
{
    /// <summary>
    /// Found by the full-size demo: at ≥ 10 GB the kernel writes the number right after the tab ("VmHWM:\t11523456 kB"),
    /// and splitting on spaces alone read "kB" as the number.
    /// </summary>
    [Theory]
    [InlineData("VmHWM:\t  264818 kB", 264818L * 1024)]
    [InlineData("VmHWM:\t11523456 kB", 11523456L * 1024)]
    [InlineData("VmRSS:\t123456789 kB", 123456789L * 1024)]
    public void Status_lines_parse_with_and_without_padding(string line, long bytes) =>
        ProcessMemory.ParseStatusLine(line).Should().Be(bytes);
}
