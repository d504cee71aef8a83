using Sd35.Diagnostics;
using Sd35.Hosting;
using Sd35.Mesh;
using Sd35.Mesh.Mpi;
using Sd35.Mesh.Tracing;
using Sd35.Pipeline;
using Sd35.Tools.Diagnostics;
using Spectre.Console;
using TorchSharp;

namespace Sd35.Demo;

/// <summary>
/// Runs one generation for the command line: every check first (<see cref="Preflight"/>), then the stages under a
/// progress display, the PNG written only when complete and finite, and the timing table.
/// </summary>
/// <param name="liveProgress">a live progress bar (a terminal) rather than one plain line per step</param>
/// <param name="process">what building the pipeline sets up in this process: the program's set-up from <see cref="DemoApp"/>; tests leave their host as it is</param>
public sealed class DemoRunner(IAnsiConsole console, bool liveProgress, InterruptGuard? interrupts = null, ProcessSetup? process = null)
{
    public DemoRunner(TextWriter output) : this(PlainConsole(output), liveProgress: false) { }

    /// <summary>A console without colours or live display, writing to <paramref name="output"/> (redirected output, tests).</summary>
    public static IAnsiConsole PlainConsole(TextWriter output) => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Ansi = AnsiSupport.No,
        ColorSystem = ColorSystemSupport.NoColors,
        Interactive = InteractionSupport.No,
        Out = new AnsiConsoleOutput(output),
    });

    public int Run(DemoOptions options)
    {
        var settings = options.Pipeline with
        {
            Trace = options.Traced ? new StepTrace() : null,
            Process = process ?? ProcessSetup.HostAsIs,
            Mpi = MpiRunOptions.Default with { ReportFailure = DemoErrors.ReportRankFailure },
        };
        // Set-up, components, the model's checks, launcher and mesh; an unavailable --device fails here.
        var pipeline = PipelineFactory.Create(settings, out var setup);
        var components = pipeline.Components;
        var transformer = components.TransformerConfig;
        int defaultSize = transformer.SampleSize * components.VaeConfig.ScaleFactor;
        // Pictures larger than the transformer's position table covers are refused from their header, before decoding.
        int maxSide = Preflight.MaxImageSize(transformer, components.VaeConfig.ScaleFactor);
        var image = ReadPicture(options.Image, "image", maxSide, grayscale: false);
        var mask = ReadPicture(options.Mask, "mask", maxSide, grayscale: true);
        var request = new GenerationRequest
        {
            Prompt = options.Prompt,
            NegativePrompt = options.NegativePrompt,
            Prompt2 = options.Prompt2,
            Prompt3 = options.Prompt3,
            NegativePrompt2 = options.NegativePrompt2,
            NegativePrompt3 = options.NegativePrompt3,
            NoT5 = options.NoT5,
            Image = image,
            Mask = mask,
            Strength = options.Strength,
            NumImagesPerPrompt = options.Images,
            Steps = options.Steps,
            GuidanceScale = options.Guidance,
            Seed = options.Seed,
            // The output is the input image's size unless the options say otherwise (which the request then refuses).
            Width = options.Width ?? image?.Width ?? defaultSize,
            Height = options.Height ?? image?.Height ?? defaultSize,
            MaxSequenceLength = options.MaxSequenceLength,
        };
        var outputs = options.OutputPaths();
        double preflightSeconds = setup.PreflightSeconds + Preflight.CheckRequest(components, request, options.Out, settings.Parallel, pipeline.Precision.Vae);
        foreach (var output in outputs.Skip(1)) OutputFile.EnsureWritable(output);
        if (options.TraceOut is not null) OutputFile.EnsureWritable(options.TraceOut, "trace_out");

        string? meshId = settings.Parallel == PipelineOptions.OneDevice ? null : settings.Parallel.Id ?? settings.Parallel.ToString();
        if (settings.Source == ModelSource.BuiltIn)
            Line("No --model given: using the built-in tiny reference components from fixtures/. Their weights are RANDOM, so the image is noise-like; pass --model <SD3.5 diffusers folder> for a real picture.");
        Line(Sd35.Tensors.LibTorchRuntime.Describe(DeviceBinding.For(settings.Device)(0)));
        Line($"precision: {pipeline.Precision}");
        Line($"{components.Description}: {Mode(request)}{request.Width}×{request.Height}, {request.StepsRun} steps, guidance {request.GuidanceScale}, seed {request.Seed}" +
            (meshId is null ? "" : MpiRuntime.IsLaunched ? $", on mesh config {meshId} over MPI (one process per device)" : $", on simulated mesh config {meshId}") + (settings.Device == ComputeDevice.Cpu ? "" : $", on {settings.Device}"));

        var probe = new StageMemoryProbe();
        probe.Start();
        using var result = DemoProgress.Run(console, liveProgress, request.StepsRun,
            progress => pipeline.Generate(request, GenerationObserver.Combine(progress, probe)));

        if (!result.IsLead) return 0;      // under a multi-process launcher, only the lead's process writes the image
        var pictures = ImageOutput.FromUnitRange(result.Image);
        foreach (var (picture, output) in pictures.Zip(outputs))
        {
            if (interrupts is null) ImageOutput.SavePng(picture, output);
            else interrupts.Writing(() => ImageOutput.SavePng(picture, output), output);
            Line($"wrote {output} ({request.Width}×{request.Height})");
        }
        console.Write(TimingTable(result.Timings, preflightSeconds, pipeline.Trace is null ? "timings (untraced)" : "timings (traced)"));
        if (pipeline.Trace is not null) Line(TraceSummary(pipeline.Trace));
        Line(probe.ToTable(result.Timings));
        if (options.StatsJson is not null) probe.WriteJson(options.StatsJson, result.Timings);
        if (options.TraceOut is not null)
        {
            // Under MPI this process holds its own device's programs only (the lead's).
            TraceExport.WriteChromeTrace(options.TraceOut, pipeline.Trace!.Captured, $"Sd35.Demo {meshId ?? "n150_cfg1_sp1_tp1"}");
            Line($"wrote {options.TraceOut} (Perfetto trace of the captured steps: open it in ui.perfetto.dev)");
        }
        return 0;
    }

    /// <summary>Reads the PNG or JPEG an option names; a missing, unreadable or truncated file is a one-line error naming the option.</summary>
    static InputImage? ReadPicture(string? path, string field, int maxSide, bool grayscale)
    {
        if (path is null) return null;
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new Sd35.Errors.RequestException(field, $"'{path}' cannot be read: {e.Message}");
        }
        return InputImage.Decode(bytes, field, $"'{path}'", maxSide, "the model's largest size", grayscale);
    }

    static string Mode(GenerationRequest request) =>
        (request.Mask is not null ? $"inpainting at strength {request.StrengthOrDefault}, " : request.Image is not null ? $"image to image at strength {request.StrengthOrDefault}, " : "")
        + (request.NumImagesPerPrompt > 1 ? $"{request.NumImagesPerPrompt} images, " : "") + (request.NoT5 ? "no T5, " : "");

    /// <summary>What the trace captured and checked, under the timing table.</summary>
    static string TraceSummary(StepTrace trace)
    {
        var captured = trace.Captured;
        var kinds = string.Join(", ", captured.Select(p => p.StepKind).Distinct());
        var buffers = trace.ReceiveBuffersPlaced == 0
            ? "no receive buffers to place (in-process exchanges hand over the sender's copy)"
            : $"{trace.ReceiveBuffersPlaced} receive buffers placed by the capture ({trace.ReceiveBufferBytes / 1e6:0.###} MB), received into {trace.ReceiveBuffersReused} times since";
        return $"trace: {captured.Count} device step programs captured ({kinds}), {trace.CheckedSteps} device steps checked against them; {buffers}";
    }

    void Line(string text) => console.Profile.Out.Writer.WriteLine(text);

    static Table TimingTable(StageTimings timings, double preflightSeconds, string title)
    {
        var table = new Table { Title = new TableTitle(title) }.AddColumn("stage").AddColumn(new TableColumn("seconds").RightAligned());
        // The library's rows, with the demo's preflight checks in front and inside the total.
        var rows = timings.Rows().Prepend((Stage: "preflight checks", Seconds: preflightSeconds))
            .Select(r => r.Stage == "total" ? (r.Stage, r.Seconds + preflightSeconds) : r);
        foreach (var (stage, seconds) in rows) table.AddRow(stage, seconds.ToString("F3", System.Globalization.CultureInfo.InvariantCulture));
        return table;
    }
}
