using System.Globalization;
using Sd35.Synthetic;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>
/// <c>random-model [--preset sd35-large|tiny] [--device cpu|cuda[:N]] [--size 1024] [--steps 2] [--guidance 3.5]
/// [--max-sequence-length 256] [--fp32] [--json FILE]</c>: the full-size benchmark without a checkpoint
/// (<see cref="RandomModelBenchmark"/>). Prints a table of the sections and writes the JSON.
/// </summary>
public static class RandomModelCommand
{
    public static int Run(string[] args)
    {
        var options = new RandomModelBenchmarkOptions();
        string? json = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--json")
            {
                json = i + 1 < args.Length ? args[++i] : throw new ArgumentException("option --json needs a value");
                continue;
            }
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"option {args[i]} needs a value");
            int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
            options = args[i] switch
            {
                "--preset" => options with { Preset = Value() },
                "--device" => options with { Device = Value() },
                "--size" => options with { Size = Int() },
                "--steps" => options with { Steps = Int() },
                "--guidance" => options with { Guidance = double.Parse(Value(), CultureInfo.InvariantCulture) },
                "--max-sequence-length" => options with { MaxSequenceLength = Int() },
                "--fp32" => options with { DType = ScalarType.Float32 },
                _ => throw new ArgumentException($"unknown option '{args[i]}'"),
            };
        }
        var result = RandomModelBenchmark.Run(options, Console.WriteLine);
        var sections = result["sections"]!.AsObject();
        Console.WriteLine($"{"section",-20} {"seconds",9} {"TFLOP/s",8} {"peak memory GiB",16}");
        foreach (var (name, section) in sections)
        {
            double seconds = section!["seconds"]?.GetValue<double>() ?? 0;
            string rate = section["tflops_per_second"] is { } t ? $"{t.GetValue<double>(),8:F2}" : $"{"",8}";
            string memory = section["peak_memory_bytes"] is { } m ? $"{m.GetValue<long>() / (double)(1L << 30),16:F2}" : "";
            Console.WriteLine($"{name,-20} {seconds,9:F3} {rate} {memory}");
        }
        double step = sections["denoising"]!["seconds"]!.GetValue<double>() / options.Steps;
        double perImage = sections["total_encoding"]!["seconds"]!.GetValue<double>() + 28 * step + sections["vae"]!["seconds"]!.GetValue<double>();
        Console.WriteLine($"one step (CFG, batch 2): {step:F3} s; one image with 28 steps ≈ {perImage:F1} s " +
            $"({result["image_flops_28_steps"]!.GetValue<double>() / 1e15:F3} PFLOP in the transformer)");
        if (json is not null)
        {
            RandomModelBenchmark.WriteJson(result, json);
            Console.WriteLine($"wrote {json}");
        }
        return 0;
    }
}
