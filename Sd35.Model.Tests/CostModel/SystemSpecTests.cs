using System.Text.Json;
using FluentAssertions;
using Sd35.CostModeling.Systems;

namespace Sd35.Tests.CostModel;

public sealed class SystemSpecTests
{
    [Fact]
    public void The_required_systems_are_built_in()
    {
        SystemSpec.Names.Should().Contain(["t3k", "galaxy", "blackhole_quietbox", "h200", "h200x8", "h100", "h100x8", "n150", "n300"]);
        SystemSpec.Get("t3k").Devices.Should().Be(8);
        SystemSpec.Get("galaxy").Devices.Should().Be(32);
        SystemSpec.Get("blackhole_quietbox").TopologyAxis1.Should().Be("ring");
        SystemSpec.Get("h200x8").Switched.Should().BeTrue();
    }

    [Fact]
    public void Every_number_of_every_system_names_its_source()
    {
        foreach (var (name, spec) in SystemSpec.BuiltIn)
        {
            var json = JsonSerializer.SerializeToElement(spec);
            foreach (var (path, sourced) in Sourced(json, name))
                sourced.GetProperty("source").GetString().Should().NotBeNullOrWhiteSpace($"{path} needs a source");
        }
    }

    static IEnumerable<(string Path, JsonElement Value)> Sourced(JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.Object) yield break;
        if (e.TryGetProperty("value", out _)) { yield return (path, e); yield break; }
        foreach (var p in e.EnumerateObject())
            foreach (var inner in Sourced(p.Value, $"{path}.{p.Name}"))
                yield return inner;
    }

    [Fact]
    public void An_unknown_system_is_named_in_the_error()
    {
        var act = () => SystemSpec.Get("dgx_quantum");
        act.Should().Throw<ArgumentException>().WithMessage("*unknown system 'dgx_quantum'*t3k*");
    }
}
