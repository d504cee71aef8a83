using System.Reflection;
using System.Text.RegularExpressions;
using FluentAssertions;
using Sd35.Mesh;
using Sd35.Tests.TestSupport;

namespace Sd35.Tests.Parallel;

/// <summary>The README's test selectors select something: every config id is a test class, every selector word is in a test name.</summary>
public class ReadmeSelectorTests
{
    static readonly string Readme = File.ReadAllText(Path.Combine(RepoPaths.Root, "README.md"));

    static IEnumerable<string> TestNames => typeof(ParallelModelTests).GetMethods(BindingFlags.Public | BindingFlags.Instance)
        .Where(m => m.GetCustomAttributes().Any(a => a is FactAttribute)).Select(m => m.Name);

    [Fact]
    public void Every_method_name_selector_the_readme_names_is_in_a_per_config_test_name()
    {
        var list = Regex.Match(Readme, @"selectors are method-name\s+tokens \(([^)]*)\)").Groups[1].Value;
        var words = Regex.Matches(list, "`([^`]+)`").Select(m => m.Groups[1].Value).ToArray();
        words.Should().NotBeEmpty("the README lists the selector words");
        foreach (var word in words)
            TestNames.Should().Contain(name => name.Contains(word, StringComparison.Ordinal), $"the README names `{word}` as a selector");
    }

    [Fact]
    public void Every_config_id_in_the_readme_table_is_a_test_class()
    {
        var ids = Regex.Matches(Readme, @"`([a-z0-9]+_cfg\d+_sp\d+_tp\d+)`").Select(m => m.Groups[1].Value).Distinct().ToArray();
        ids.Should().NotBeEmpty();
        foreach (var configId in ids)
        {
            ParallelConfig.Parse(configId);
            typeof(ParallelModelTests).Assembly.GetType($"Sd35.Tests.Parallel.{configId}").Should().NotBeNull($"`{configId}` is a README config id");
        }
    }
}
