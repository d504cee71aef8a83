using System.Diagnostics;
using Sd35.Diagnostics;
using Sd35.Synthetic;
using Sd35.Tensors.Checkpoints.Layouts;
using Sd35.Tensors.Quantization;

namespace Sd35.Perf;

/// <summary>
/// <c>make-model --out DIR [--preset sd35-large|tiny] [--seed N] [--components a,b] [--format folder|single-file|gguf] [--quantize q8_0]</c>
/// (or <c>make-model --verify DIR</c>): writes a diffusers-layout SD3.5 folder with seeded random bf16 weights
/// (<see cref="SyntheticModelFolder"/>), and with <c>--format</c> the same weights beside it in the layouts users hold
/// (<see cref="OriginalLayoutWriter"/>); reports each component's size and write speed and the writer's peak memory.
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
        string format = "folder";
        GgmlType? quantize = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"option {args[i]} needs a value");
            switch (args[i])
            {
                case "--out": output = Value(); break;
                case "--preset": preset = Value(); break;
                case "--seed": seed = long.Parse(Value()); break;
                case "--components": only = Value().Split(','); break;
                case "--format": format = Value(); break;
                case "--quantize": quantize = Enum.TryParse<GgmlType>(Value(), ignoreCase: true, out var q) ? q : throw new ArgumentException($"--quantize '{args[i]}' is not a ggml type (q8_0, q5_1, q4_0, …)"); break;
                default: throw new ArgumentException($"unknown option '{args[i]}' (make-model --out DIR [--preset {string.Join("|", SyntheticModelPreset.Names)}] [--seed N] [--components transformer,text_encoder_3,...] [--format folder|single-file|gguf] [--quantize q8_0])");
            }
        }
        if (output is null) throw new ArgumentException("make-model needs --out DIR");
        if (format is not ("folder" or "single-file" or "gguf")) throw new ArgumentException($"--format '{format}' is not one of folder, single-file, gguf");
        if (quantize is not null && format != "gguf") throw new ArgumentException("--quantize applies to --format gguf");
        // HOOK: block types need the ggml codec's quantizer (raw blocks as uint8 rows), passed to ExportGguf below once it exists.
        if (quantize is { } blocks && GgmlBlocks.IsBlockQuantized(blocks))
            throw new ArgumentException($"--quantize {blocks} needs the ggml block quantizer, which this build does not have yet (dense: --quantize f32|f16|bf16)");
        var chosen = SyntheticModelPreset.Named(preset);
        Console.WriteLine($"writing a random-weight '{preset}' SD3.5 folder (bf16, seed {seed}) to {output}");
        var watch = Stopwatch.StartNew();
        var components = SyntheticModelFolder.Write(output, chosen, seed, log: Console.WriteLine, only: only);
        if (format == "single-file") OriginalLayoutWriter.ExportSingleFile(output, Console.WriteLine);
        if (format == "gguf") OriginalLayoutWriter.ExportGguf(output, quantize ?? GgmlType.BF16, quantize: null, Console.WriteLine);
        long bytes = components.Sum(c => c.Bytes);
        Console.WriteLine($"done: {bytes / 1e9:F2} GB in {watch.Elapsed.TotalSeconds:F0} s; writer peak RSS (VmHWM) {ProcessMemory.PeakResidentBytes / (double)(1 << 30):F2} GiB");
        return 0;
    }
}
