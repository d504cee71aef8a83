using System.Globalization;

namespace Sd35.Demo;

/// <summary>The demo's command line, parsed and validated before any model is touched.</summary>
public sealed record DemoOptions
{
    public string Prompt { get; init; } = "a photo of an astronaut riding a horse on the moon";
    public string NegativePrompt { get; init; } = "";
    public int Steps { get; init; } = 28;
    public double Guidance { get; init; } = 3.5;
    public long Seed { get; init; } = 0;
    public int? Width { get; init; }
    public int? Height { get; init; }
    public string? Model { get; init; }
    public string Out { get; init; } = "sd35.png";
    public int MaxSequenceLength { get; init; } = 256;
    public bool Bf16 { get; init; }
    public string? Parallel { get; init; }
    public Sd35.Mesh.ComputeDevice Device { get; init; } = Sd35.Mesh.ComputeDevice.Cpu;
    public bool Help { get; init; }
    public string? StatsJson { get; init; }

    public const string Usage = """
        Sd35.Demo — text to image with Stable Diffusion 3.5

          --prompt <text>            what to draw
          --negative-prompt <text>   what to avoid (default: empty)
          --steps <n>                denoising steps (default 28)
          --guidance <x>             classifier-free guidance scale (default 3.5)
          --seed <n>                 seed of the initial latents (default 0)
          --width <px> --height <px> image size, multiples of 16 (default: 1024, or the built-in model's size)
          --model <dir>              a diffusers folder of SD3.5 (transformer/, vae/, text_encoder*/, tokenizer*/, scheduler/)
                                     without it, the tiny random-weight reference components in fixtures/ are used
          --max-sequence-length <n>  T5 tokens (default 256)
          --bf16                     run the models in bfloat16 (halves memory; about 4× slower on CPUs without AMX)
          --parallel <config id>     run on a simulated device mesh, e.g. t3k_cfg2_sp2_tp2
          --device cpu|cuda          bind every device of the run to the CPU (default) or to the CUDA GPUs, round-robin
          --out <file.png>           output image (default sd35.png)
          --stats-json <file.json>   also write each stage's load and compute seconds and peak / released resident memory
        """;

    public static DemoOptions Parse(IReadOnlyList<string> args)
    {
        var options = new DemoOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"option {name} needs a value");
            options = name switch
            {
                "--prompt" => options with { Prompt = Value() },
                "--negative-prompt" => options with { NegativePrompt = Value() },
                "--steps" => options with { Steps = PositiveInt(name, Value()) },
                "--guidance" => options with { Guidance = NonNegativeDouble(name, Value()) },
                "--seed" => options with { Seed = ParseLong(name, Value()) },
                "--width" => options with { Width = PositiveInt(name, Value()) },
                "--height" => options with { Height = PositiveInt(name, Value()) },
                "--model" => options with { Model = Value() },
                "--out" => options with { Out = Value() },
                "--max-sequence-length" => options with { MaxSequenceLength = PositiveInt(name, Value()) },
                "--bf16" => options with { Bf16 = true },
                "--parallel" => options with { Parallel = Value() },
                "--device" => options with { Device = ParseDevice(name, Value()) },
                "--stats-json" => options with { StatsJson = Value() },
                "--help" or "-h" => options with { Help = true },
                _ => throw new ArgumentException($"unknown option '{name}'"),
            };
        }
        if (!options.Out.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"--out '{options.Out}' must name a .png file");
        if (options.Parallel is not null) CheckParallelId(options.Parallel);
        if (options.Model is not null && !Directory.Exists(options.Model))
            throw new ArgumentException($"--model '{options.Model}' is not a folder");
        return options;
    }

    /// <summary>Unknown or malformed config ids fail here, before any work.</summary>
    static void CheckParallelId(string id)
    {
        try { Sd35.Mesh.ParallelConfig.Parse(id); }
        catch (Exception e) when (e is FormatException or KeyNotFoundException)
        {
            throw new ArgumentException($"--parallel '{id}': {e.Message}", e);
        }
    }

    static Sd35.Mesh.ComputeDevice ParseDevice(string name, string text) => text.ToLowerInvariant() switch
    {
        "cpu" => Sd35.Mesh.ComputeDevice.Cpu,
        "cuda" => Sd35.Mesh.ComputeDevice.Cuda,
        _ => throw new ArgumentException($"{name} must be cpu or cuda, got '{text}'"),
    };

    static int PositiveInt(string name, string text) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0
            ? v : throw new ArgumentException($"{name} must be a positive integer, got '{text}'");

    static long ParseLong(string name, string text) =>
        long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v)
            ? v : throw new ArgumentException($"{name} must be an integer, got '{text}'");

    static double NonNegativeDouble(string name, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v >= 0 && double.IsFinite(v)
            ? v : throw new ArgumentException($"{name} must be a non-negative number, got '{text}'");
}
