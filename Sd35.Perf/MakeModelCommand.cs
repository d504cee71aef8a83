using System.CommandLine;
using System.Diagnostics;
using Sd35.Diagnostics;
using Sd35.Tensors.Checkpoints.Layouts;
using Sd35.Tensors.Quantization;
using Sd35.Tools.Synthetic;

namespace Sd35.Perf;

/// <summary>What <c>synthetic-model</c> writes: a preset's architecture with weights from a seed, all or some components.</summary>
public sealed record MakeModelSettings(string Out, string Preset = "sd35-large", long Seed = 0, IReadOnlyCollection<string>? Components = null,
    string Format = "folder", GgmlType? Quantize = null);

/// <summary>
/// <c>synthetic-model --out DIR [--preset sd35-large|tiny] [--seed N] [--components a,b] [--format folder|single-file|gguf]
/// [--quantize TYPE]</c> (or <c>synthetic-model --verify DIR</c>): writes a diffusers-layout SD3.5 folder with seeded random
/// bf16 weights (<see cref="SyntheticModelFolder"/>), and with <c>--format</c> the same weights beside it in the layouts users
/// hold (<see cref="OriginalLayoutWriter"/>); reports each component's size and write speed and the writer's own peak
/// resident memory.
/// </summary>
public static class MakeModelCommand
{
    public static Command Command()
    {
        var output = new Option<string?>("--out") { Description = "The folder to write (created if missing).", HelpName = "dir" };
        var verify = new Option<string?>("--verify") { Description = "Instead of writing: check a written folder against its seed and preset; exit code 1 when any component is off.", HelpName = "dir" };
        var preset = new Option<string>("--preset") { Description = "The architecture.", DefaultValueFactory = _ => "sd35-large", HelpName = "name" };
        preset.AcceptOnlyFromAmong([.. SyntheticModelPreset.Names]);
        var seed = new Option<long>("--seed") { Description = "Seed of the random weights (with --verify: the seed they were written with).", HelpName = "n" };
        var components = PerfOptions.NameList("--components", "Write only these components (the folder is then not marked complete).", PerfOptions.ComponentFolders);
        var format = new Option<string>("--format") { Description = "Also write the weights beside the folder as the release's single file (with text_encoders/) or as a GGUF transformer.", DefaultValueFactory = _ => "folder", HelpName = "folder|single-file|gguf" };
        format.AcceptOnlyFromAmong("folder", "single-file", "gguf");
        var quantize = new Option<GgmlType?>("--quantize") { Description = "The GGUF transformer's tensor type (default bf16): f32, f16, bf16, q8_0, q5_1, q5_0, q4_1, q4_0.", HelpName = "type" };
        var command = new Command("synthetic-model", "Writes a diffusers-layout SD3.5 folder with seeded random weights (or, with --verify, checks one).") { output, verify, preset, seed, components, format, quantize };
        command.Validators.Add(r =>
        {
            if ((r.GetResult(output) is null) == (r.GetResult(verify) is null)) r.AddError("synthetic-model needs either --out DIR or --verify DIR");
            if (r.GetResult(quantize) is not null && r.GetValue(format) != "gguf") r.AddError("--quantize applies to --format gguf");
            if (r.GetValue(quantize) is { } type && GgmlBlocks.IsBlockQuantized(type) && !GgmlCodec.IsSupported(type))
                r.AddError($"--quantize {type}: block types are {string.Join(", ", GgmlCodec.Supported)}");
            if (r.GetValue(quantize) is { } fp8 && Fp8Format.Is(fp8)) r.AddError($"--quantize {fp8}: GGUF has no fp8 type");
        });
        command.SetAction(r =>
        {
            return r.GetValue(verify) is { } folder
                ? Verify(folder, r.GetValue(seed))
                : Run(new MakeModelSettings(r.GetValue(output)!, r.GetValue(preset)!, r.GetValue(seed), r.GetValue(components) is { Length: > 0 } chosen ? chosen : null,
                    r.GetValue(format)!, r.GetValue(quantize)));
        });
        return command;
    }

    public static int Verify(string folder, long seed)
    {
        var lines = SyntheticModelFolder.Verify(folder, seed);
        foreach (var line in lines) Console.WriteLine(line);
        return lines.All(l => l.EndsWith(": ok", StringComparison.Ordinal)) ? 0 : 1;
    }

    public static int Run(MakeModelSettings settings)
    {
        var chosen = SyntheticModelPreset.Named(settings.Preset);
        Console.WriteLine($"writing a random-weight '{settings.Preset}' SD3.5 folder (bf16, seed {settings.Seed}) to {settings.Out}");
        var watch = Stopwatch.StartNew();
        var components = SyntheticModelFolder.Write(settings.Out, chosen, settings.Seed, log: Console.WriteLine, only: settings.Components);
        if (settings.Format == "single-file") OriginalLayoutWriter.ExportSingleFile(settings.Out, Console.WriteLine);
        if (settings.Format == "gguf") OriginalLayoutWriter.ExportGguf(settings.Out, settings.Quantize ?? GgmlType.BF16, GgmlCodec.Quantize, Console.WriteLine);
        long bytes = components.Sum(c => c.Bytes);
        Console.WriteLine($"done: {bytes / 1e9:F2} GB in {watch.Elapsed.TotalSeconds:F0} s; writer peak RSS (VmHWM) {ProcessMemory.PeakResidentBytes / (double)(1 << 30):F2} GiB");
        return 0;
    }
}
