namespace Sd35.Demo;

/// <summary>The demo's command line after parsing and validation (see <see cref="DemoCommandLine"/>).</summary>
public sealed record DemoOptions
{
    public string Prompt { get; init; } = DemoCommandLine.DefaultPrompt;
    public string NegativePrompt { get; init; } = "";
    public string? Prompt2 { get; init; }
    public string? Prompt3 { get; init; }
    public string? NegativePrompt2 { get; init; }
    public string? NegativePrompt3 { get; init; }
    public bool NoT5 { get; init; }
    /// <summary>The PNG or JPEG to start from (image to image), and with <see cref="Mask"/> the one to repaint.</summary>
    public string? Image { get; init; }
    public string? Mask { get; init; }
    public double? Strength { get; init; }
    /// <summary>Images per prompt; above 1 the files are <see cref="OutputPaths"/>.</summary>
    public int Images { get; init; } = 1;
    public int Steps { get; init; } = 28;
    public double Guidance { get; init; } = 3.5;
    public long Seed { get; init; } = 0;
    public int? Width { get; init; }
    public int? Height { get; init; }
    public string Out { get; init; } = "sd35.png";
    public int MaxSequenceLength { get; init; } = 256;
    /// <summary>The model, mesh, device, dtypes and residency: the options every front-end shares (<see cref="Sd35.Hosting.PipelineSettingOptions"/>).</summary>
    public Sd35.Hosting.PipelineSettings Pipeline { get; init; } = DemoCommandLine.PipelineDefaults;
    public string? StatsJson { get; init; }
    /// <summary>Capture the first denoising step of each kind and check the later ones against it (<see cref="Sd35.Mesh.Tracing.StepTrace"/>).</summary>
    public bool Traced { get; init; }
    /// <summary>Where to write the captured steps as Perfetto trace-event JSON (implies <see cref="Traced"/>).</summary>
    public string? TraceOut { get; init; }

    /// <summary>Where the images go: <see cref="Out"/> for one; <c>name-1.png</c> … <c>name-N.png</c> beside it for N.</summary>
    public IReadOnlyList<string> OutputPaths()
    {
        if (Images == 1) return [Out];
        var stem = Path.Combine(Path.GetDirectoryName(Out) ?? "", Path.GetFileNameWithoutExtension(Out));
        return Enumerable.Range(1, Images).Select(i => $"{stem}-{i}{Path.GetExtension(Out)}").ToList();
    }

    /// <summary>Parses and validates <paramref name="args"/>; a bad argument is a <see cref="CommandLineException"/> naming the option.</summary>
    public static DemoOptions Parse(IReadOnlyList<string> args)
    {
        var commandLine = new DemoCommandLine();
        var result = commandLine.Parse(args);
        if (result.Errors.Count > 0) throw new CommandLineException(commandLine.FirstError(result));
        return commandLine.Options(result);
    }
}

/// <summary>A command-line argument is missing, malformed or out of range: the demo exits 2 with this one line.</summary>
public sealed class CommandLineException(string message) : Sd35.Errors.InputException(message);
