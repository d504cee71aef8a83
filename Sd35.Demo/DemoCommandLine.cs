using System.CommandLine;
using System.CommandLine.Parsing;
using Sd35.Hosting;
using Sd35.Pipeline;

namespace Sd35.Demo;

/// <summary>
/// The demo's options on System.CommandLine: help (<c>--help</c>), <c>--version</c>, typo suggestions for unknown
/// options, and validators that name the option and the value. The numeric bounds are those of
/// <see cref="GenerationRequest"/>; the size limit depends on the model and is checked by <see cref="Preflight"/>.
/// </summary>
public sealed class DemoCommandLine
{
    public const string DefaultPrompt = "a photo of an astronaut riding a horse on the moon";

    readonly Option<string> _prompt = new("--prompt") { Description = "What to draw.", DefaultValueFactory = _ => DefaultPrompt, HelpName = "text" };
    readonly Option<string> _negativePrompt = new("--negative-prompt") { Description = "What to avoid (default: empty).", DefaultValueFactory = _ => "", HelpName = "text" };
    readonly Option<int> _steps = new("--steps") { Description = $"Denoising steps, 1..{GenerationRequest.MaxSteps}.", DefaultValueFactory = _ => 28, HelpName = "n" };
    readonly Option<double> _guidance = new("--guidance") { Description = $"Classifier-free guidance scale, 0..{GenerationRequest.MaxGuidanceScale} (guidance runs above 1).", DefaultValueFactory = _ => 3.5, HelpName = "x" };
    readonly Option<long> _seed = new("--seed") { Description = "Seed of the initial latents, any 64-bit integer.", DefaultValueFactory = _ => 0, HelpName = "n" };
    readonly Option<int?> _width = new("--width") { Description = "Image width in pixels, a multiple of 16 up to the model's limit (3072 for SD3.5 Large; default: the model's sample size).", HelpName = "px" };
    readonly Option<int?> _height = new("--height") { Description = "Image height in pixels, as --width.", HelpName = "px" };
    readonly Option<int> _maxSequenceLength = new("--max-sequence-length") { Description = $"T5 tokens, 1..{GenerationRequest.MaxMaxSequenceLength}.", DefaultValueFactory = _ => 256, HelpName = "n" };
    readonly Option<string?> _statsJson = new("--stats-json") { Description = "Also write each stage's load and compute seconds and its peak and released resident memory (JSON).", HelpName = "file.json" };
    readonly Option<bool> _traced = new("--traced") { Description = "Trace the denoising loop: the first step of each kind (guided, with skip-layer guidance, unguided) captures every device's step program (every op and collective, with shapes, bytes and times); every later step is checked against it collective by collective and fails at once, naming the device, on a divergence. The timing table says whether the run was traced." };
    readonly Option<string?> _traceOut = new("--trace-out") { Description = "Write the captured steps as Perfetto / Chrome trace-event JSON (one track per device; open in ui.perfetto.dev). Implies --traced; its folder must exist.", HelpName = "file.json" };
    readonly Option<string?> _prompt2 = new("--prompt-2") { Description = "CLIP-G's prompt (default: --prompt).", HelpName = "text" };
    readonly Option<string?> _prompt3 = new("--prompt-3") { Description = "T5's prompt (default: --prompt).", HelpName = "text" };
    readonly Option<string?> _negativePrompt2 = new("--negative-prompt-2") { Description = "CLIP-G's negative prompt (default: --negative-prompt).", HelpName = "text" };
    readonly Option<string?> _negativePrompt3 = new("--negative-prompt-3") { Description = "T5's negative prompt (default: --negative-prompt).", HelpName = "text" };
    readonly Option<bool> _noT5 = new("--no-t5") { Description = "Run without the T5 text encoder (zeros in its place, as diffusers with text_encoder_3=None): 9.5 GB less for SD3.5 Large. A model folder without text_encoder_3/ runs so anyway." };
    readonly Option<string?> _image = new("--image") { Description = "Start from this PNG or JPEG (image to image; with --mask, inpainting). Its size is the output size unless --width/--height say otherwise; both sides must be multiples of 16.", HelpName = "file" };
    readonly Option<string?> _mask = new("--mask") { Description = "Inpainting mask, PNG or JPEG of the image's size: white (≥ 50 % grey) is repainted, black kept. Needs --image.", HelpName = "file" };
    readonly Option<double?> _strength = new("--strength") { Description = $"With --image: how much to change it, in (0, 1]; runs the last strength × steps steps (default {GenerationRequest.DefaultStrength}; 1 starts from noise).", HelpName = "x" };
    readonly Option<int> _images = new("--images") { Description = $"Images per prompt, 1..{GenerationRequest.MaxImagesPerPrompt}, one batch; above 1 they are written as <out>-1.png … <out>-N.png.", DefaultValueFactory = _ => 1, HelpName = "n" };
    readonly Option<string> _out = new("--out") { Description = "Output PNG file; written only when the image is complete, its folder must exist.", DefaultValueFactory = _ => "sd35.png", HelpName = "file.png" };

    /// <summary>The pipeline's options (<c>--model</c>, <c>--parallel</c>, <c>--bf16</c>, …), made from their one definition in the library.</summary>
    readonly Dictionary<string, Option> _pipelineOptions = PipelineSettingOptions.All.ToDictionary(o => o.Name, PipelineOption);

    /// <summary>The demo's pipeline defaults: staged models, the program's process set-up.</summary>
    public static PipelineSettings PipelineDefaults { get; } = new();

    public RootCommand Root { get; }

    public DemoCommandLine()
    {
        Root = new RootCommand("Sd35.Demo — text to image with Stable Diffusion 3.5")
        {
            _prompt, _negativePrompt, _prompt2, _prompt3, _negativePrompt2, _negativePrompt3, _noT5, _image, _mask, _strength, _images, _steps, _guidance, _seed, _width, _height, _maxSequenceLength, _out, _statsJson, _traced, _traceOut,
        };
        foreach (var option in _pipelineOptions.Values) Root.Options.Add(option);
        InRange(_steps, 1, GenerationRequest.MaxSteps);
        InRange(_images, 1, GenerationRequest.MaxImagesPerPrompt);
        Validate(_strength, s => s is null || (double.IsFinite(s.Value) && s > 0 && s <= 1), "must be in (0, 1]");
        InRange(_maxSequenceLength, 1, GenerationRequest.MaxMaxSequenceLength);
        Validate(_guidance, g => double.IsFinite(g) && g >= 0 && g <= GenerationRequest.MaxGuidanceScale, $"must be a number in 0..{GenerationRequest.MaxGuidanceScale}");
        Validate(_width, w => w is null or > 0, "must be a positive number of pixels");
        Validate(_height, h => h is null or > 0, "must be a positive number of pixels");
        Validate(_out, o => o.EndsWith(".png", StringComparison.OrdinalIgnoreCase), "must name a .png file");
        Validate(_traceOut, t => t is null || t.EndsWith(".json", StringComparison.OrdinalIgnoreCase), "must name a .json file");
    }

    /// <summary>A library option as a System.CommandLine option: its help, its default shown, and its validation (the library's own).</summary>
    static Option PipelineOption(PipelineSettingOption setting)
    {
        if (setting.IsFlag) return new Option<bool>("--" + setting.Name) { Description = setting.Description };
        var option = new Option<string?>("--" + setting.Name) { Description = setting.Description, HelpName = setting.HelpName };
        if (setting.Shown(PipelineDefaults) is { } shown) option.DefaultValueFactory = _ => shown;
        option.Validators.Add(result =>
        {
            if (TryValue(result, out string? value) && value is not null && setting.Problem(value) is { } problem) result.AddError(problem);
        });
        return option;
    }

    /// <summary>The pipeline's settings from the parsed options: the library's one mapping over the texts given.</summary>
    PipelineSettings Pipeline(ParseResult result) =>
        PipelineSettingOptions.Read(name => _pipelineOptions[name] switch
        {
            Option<bool> flag => result.GetValue(flag) ? "true" : null,
            Option<string?> text => result.GetValue(text),
            _ => null,
        }, PipelineDefaults);

    static void InRange(Option<int> option, int min, int max) => Validate(option, v => v >= min && v <= max, $"must be in {min}..{max}");

    static void Validate<T>(Option<T> option, Func<T, bool> ok, string problem) =>
        option.Validators.Add(result =>
        {
            if (!TryValue(result, out T value) || ok(value)) return;
            var token = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "(default)";
            result.AddError($"{option.Name} '{token}': {problem}");
        });

    /// <summary>A value that does not convert (<c>--steps zero</c>) is already a parse error of its own; validators skip it.</summary>
    static bool TryValue<T>(OptionResult result, out T value)
    {
        try
        {
            value = result.GetValueOrDefault<T>();
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default!;
            return false;
        }
    }

    /// <summary>The option names closest to an unknown token (edit distance at most 2), for "did you mean".</summary>
    public IEnumerable<string> Suggestions(string token) =>
        Root.Options.SelectMany(o => o.Aliases.Append(o.Name)).Where(n => n.StartsWith("--"))
            .Select(n => (Name: n, Distance: EditDistance(token, n))).Where(c => c.Distance <= 2)
            .OrderBy(c => c.Distance).Select(c => c.Name).Distinct();

    static int EditDistance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int next = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = row[j];
                row[j] = next;
            }
        }
        return row[b.Length];
    }

    /// <summary>The first parse error as one line, with a suggestion where an unknown option is close to a real one.</summary>
    public string FirstError(ParseResult result)
    {
        var message = result.Errors[0].Message;
        var unknown = result.UnmatchedTokens.FirstOrDefault(t => t.StartsWith('-'));
        var suggestion = unknown is null ? null : Suggestions(unknown).FirstOrDefault();
        return suggestion is null ? message : $"{message} Did you mean '{suggestion}'?";
    }

    public ParseResult Parse(IReadOnlyList<string> args) => Root.Parse(args);

    public DemoOptions Options(ParseResult result) => new()
    {
        Prompt = result.GetValue(_prompt)!,
        NegativePrompt = result.GetValue(_negativePrompt)!,
        Prompt2 = result.GetValue(_prompt2),
        Prompt3 = result.GetValue(_prompt3),
        NegativePrompt2 = result.GetValue(_negativePrompt2),
        NegativePrompt3 = result.GetValue(_negativePrompt3),
        NoT5 = result.GetValue(_noT5),
        Image = result.GetValue(_image),
        Mask = result.GetValue(_mask),
        Strength = result.GetValue(_strength),
        Images = result.GetValue(_images),
        Steps = result.GetValue(_steps),
        Guidance = result.GetValue(_guidance),
        Seed = result.GetValue(_seed),
        Width = result.GetValue(_width),
        Height = result.GetValue(_height),
        MaxSequenceLength = result.GetValue(_maxSequenceLength),
        Out = result.GetValue(_out)!,
        StatsJson = result.GetValue(_statsJson),
        Traced = result.GetValue(_traced) || result.GetValue(_traceOut) is not null,
        Pipeline = Pipeline(result),
        TraceOut = result.GetValue(_traceOut),
    };
}
