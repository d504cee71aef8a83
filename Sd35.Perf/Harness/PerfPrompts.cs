namespace Sd35.Perf.Harness;

/// <summary>
/// The reference perf test's five prompts (cyberpunk alley, whale, Roman general, dragon in a teacup, snowy cabin;
/// reference-system.md §4.1): the warm-up uses prompt 0, timed run i uses prompt (i + 1) mod 5, as G2/G3 do.
/// </summary>
public static class PerfPrompts
{
    public static readonly IReadOnlyList<string> All =
    [
        "A neon-lit cyberpunk alley at night, rain-soaked pavement reflecting pink and blue signs, steam rising from vents",
        "A humpback whale breaching out of a calm ocean at sunrise, water droplets glittering in golden light",
        "A portrait of a Roman general in ornate armour, standing before his legions, dramatic clouds overhead",
        "A tiny dragon curled up asleep inside a porcelain teacup on a wooden table, soft morning light",
        "An epic, high-definition cinematic shot of a rustic snowy cabin glowing warmly at dusk",
    ];

    public static string Warmup => All[0];

    public static string Timed(int run) => All[(run + 1) % All.Count];
}
