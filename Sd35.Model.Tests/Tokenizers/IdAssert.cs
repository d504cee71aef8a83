using Xunit.Sdk;

namespace Sd35.Tests.Tokenizers;

/// <summary>Id-sequence equality whose failure message names the prompt and the first position that differs.</summary>
public static class IdAssert
{
    public static void Equal(IReadOnlyList<int> expected, IReadOnlyList<int> actual, string prompt, string what)
    {
        int common = Math.Min(expected.Count, actual.Count);
        int firstDifference = Enumerable.Range(0, common).FirstOrDefault(i => expected[i] != actual[i], -1);
        if (firstDifference < 0 && expected.Count == actual.Count)
        {
            return;
        }

        string where = firstDifference >= 0
            ? $"first difference at position {firstDifference}: expected {expected[firstDifference]}, got {actual[firstDifference]}"
            : $"lengths differ: expected {expected.Count} ids, got {actual.Count} (equal up to {common})";
        throw new XunitException(
            $"{what} for prompt {Quote(prompt)}: {where}.{Environment.NewLine}" +
            $"expected [{string.Join(", ", expected)}]{Environment.NewLine}" +
            $"actual   [{string.Join(", ", actual)}]");
    }

    static string Quote(string prompt) => System.Text.Json.JsonSerializer.Serialize(prompt);
}
