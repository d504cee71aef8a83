using System.Diagnostics;
using Sd35.Diagnostics;
using Sd35.Tools.Synthetic;

namespace Sd35.Perf;

/// <summary>
/// <c>make-model --out DIR [--preset sd35-large|tiny] [--seed N] [--components a,b]</c> (or <c>make-model --verify DIR</c>): writes a diffusers-layout SD3.5 folder with
/// seeded random bf16 weights (<see cref="SyntheticModelFolder"/>) and reports each component's size and write
/// speed and the writer's own peak resident memory.
/// </summary>
public static class MakeModelCommand
{
    public static int Run(string[] args)
    {
        if (args is ["--verify", var folder, ..])
        {
            var lines = SyntheticModelFolder.Verify(folder);
            foreach (var line in lines) Console.WriteLine(line);
            return lines.All(l => l.EndsWith(": ok", StringComparison.Ordinal)) ? 0 : 1;
        }
        string? output = null;
        string preset = "sd35-large";
        long seed = 0;
        IReadOnlyCollection<string>? only = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"option {args[i]} needs a value");
            switch (args[i])
            {
                case "--out": output = Value(); break;
                case "--preset": preset = Value(); break;
                case "--seed": seed = long.Parse(Value()); break;
                case "--components": only = Value().Split(','); break;
                default: throw new ArgumentException($"unknown option '{args[i]}' (make-model --out DIR [--preset {string.Join("|", SyntheticModelPreset.Names)}] [--seed N] [--components transformer,text_encoder_3,...])");
            }
        }
        if (output is null) throw new ArgumentException("make-model needs --out DIR");
        var chosen = SyntheticModelPreset.Named(preset);
        Console.WriteLine($"writing a random-weight '{preset}' SD3.5 folder (bf16, seed {seed}) to {output}");
        var watch = Stopwatch.StartNew();
        var components = SyntheticModelFolder.Write(output, chosen, seed, log: Console.WriteLine, only: only);
        long bytes = components.Sum(c => c.Bytes);
        Console.WriteLine($"done: {bytes / 1e9:F2} GB in {watch.Elapsed.TotalSeconds:F0} s; writer peak RSS (VmHWM) {ProcessMemory.PeakResidentBytes / (double)(1 << 30):F2} GiB");
        return 0;
    }
}
