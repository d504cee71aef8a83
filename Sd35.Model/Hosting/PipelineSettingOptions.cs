using Sd35.Errors;
using Sd35.Mesh;
using Sd35.Pipeline;
using Sd35.Tensors.Quantization;
using static TorchSharp.torch;

namespace Sd35.Hosting;

/// <summary>
/// One pipeline option as users type it (<c>--name value</c>, or a bare flag): its help, its default as shown, and
/// how its text sets <see cref="PipelineSettings"/>. Defined once in <see cref="PipelineSettingOptions"/>; the demo
/// makes its System.CommandLine options from it, the server its usage text and configuration keys.
/// </summary>
public sealed class PipelineSettingOption
{
    internal PipelineSettingOption(string name, string helpName, string description, Func<PipelineSettings, string, PipelineSettings> apply,
        Func<PipelineSettings, string?>? shown = null, bool isFlag = false)
    {
        (Name, HelpName, Description, _apply, _shown, IsFlag) = (name, helpName, description, apply, shown, isFlag);
    }

    readonly Func<PipelineSettings, string, PipelineSettings> _apply;
    readonly Func<PipelineSettings, string?>? _shown;

    /// <summary>Without dashes: <c>parallel</c> is <c>--parallel</c> on a command line and the key <c>parallel</c> in a configuration.</summary>
    public string Name { get; }
    public string HelpName { get; }
    public string Description { get; }
    /// <summary>A flag takes no value on a command line (<c>--bf16</c>); its text is <c>true</c> or <c>false</c>.</summary>
    public bool IsFlag { get; }

    /// <summary>The default as help shows it, for a program whose defaults are <paramref name="defaults"/>; null: nothing to show.</summary>
    public string? Shown(PipelineSettings defaults) => _shown?.Invoke(defaults);

    /// <summary>Sets this option's value; a bad value is a <see cref="SettingException"/> naming the option and the value.</summary>
    public PipelineSettings Apply(PipelineSettings settings, string value) => _apply(settings, value);

    /// <summary>Why <paramref name="value"/> is refused, one line naming the option; null when it is good.</summary>
    public string? Problem(string value)
    {
        try
        {
            Apply(new PipelineSettings(), value);
            return null;
        }
        catch (SettingException e)
        {
            return e.Message;
        }
    }
}

/// <summary>
/// The pipeline options every front-end offers, each defined once (name, help, default, parsing and validation), and
/// the one mapping from option texts onto <see cref="PipelineSettings"/>.
/// </summary>
public static class PipelineSettingOptions
{
    public static PipelineSettingOption Model { get; } = new("model", "dir",
        "A diffusers folder of SD3.5 (transformer/, vae/, text_encoder*/, tokenizer*/, scheduler/). Without it, the tiny random-weight reference components in fixtures/ are used.",
        (s, v) => s with { Source = s.Source with { Model = Existing("model", v, file: true, folder: true) } });
    public static PipelineSettingOption Transformer { get; } = Component("transformer", "the transformer (MMDiT)", (m, v) => m with { Transformer = v });
    public static PipelineSettingOption Vae { get; } = Component("vae", "the VAE", (m, v) => m with { Vae = v });
    public static PipelineSettingOption ClipL { get; } = Component("clip-l", "CLIP-L (text_encoder)", (m, v) => m with { ClipL = v });
    public static PipelineSettingOption ClipG { get; } = Component("clip-g", "CLIP-G (text_encoder_2)", (m, v) => m with { ClipG = v });
    public static PipelineSettingOption T5 { get; } = Component("t5", "T5 (text_encoder_3)", (m, v) => m with { T5 = v });

    public static PipelineSettingOption Parallel { get; } = new("parallel", "config id",
        $"Run the denoising loop on a device mesh: simulated in this process, or one process per device under mpirun -np <devices> tools/mpi/sd35-rank. Configs: {string.Join(", ", NamedParallelConfigs.All.Select(c => c.Id))}.",
        (s, v) => s with { Parallel = ParallelConfigOf(v) });

    public static PipelineSettingOption Device { get; } = new("device", "cpu|cuda",
        "Bind every device of the run to the CPU or to the CUDA GPUs, round-robin.",
        (s, v) => s with { Device = OneOf("device", v, ("cpu", ComputeDevice.Cpu), ("cuda", ComputeDevice.Cuda)) },
        s => s.Device.ToString().ToLowerInvariant());

    public static PipelineSettingOption Bf16 { get; } = new("bf16", "",
        "Store the weights in bfloat16 (halves their memory); they are expanded layer by layer to --compute-dtype.",
        (s, v) => s with { WeightDType = Flag("bf16", v) ? ScalarType.BFloat16 : ScalarType.Float32 }, isFlag: true);

    public static PipelineSettingOption ComputeDType { get; } = new("compute-dtype", "float32|bfloat16|auto",
        "The dtype the layers compute in; auto: whichever of float32 and bfloat16 this CPU runs faster, measured at start (on CUDA and under mpirun: the weights' dtype).",
        (s, v) => s with { ComputeDType = OneOf("compute-dtype", v, ("float32", (ScalarType?)ScalarType.Float32), ("bfloat16", ScalarType.BFloat16), ("auto", null)) },
        s => s.ComputeDType is { } dtype ? DTypeName(dtype) : "auto");

    public static PipelineSettingOption Quantize { get; } = new("quantize", "type",
        $"Hold the linear weights and embedding tables of the transformer and the text encoders as ggml blocks of this type, quantized at load ({SupportedQuantizations}); rows that are not whole blocks stay unquantized, and weights a file holds as blocks or fp8 stay as they are.",
        (s, v) => s with { Quantization = QuantizationOf(v) });

    public static PipelineSettingOption Models { get; } = new("models", "resident|staged",
        "resident: load the models once and keep them between generations (every stage's weights at once); staged: load each stage's models per generation and release them before the next stage (one stage's weights at a time, plus load time per generation).",
        (s, v) => s with { Residency = OneOf("models", v, ("resident", ModelResidency.Resident), ("staged", ModelResidency.Staged)) },
        s => s.Residency.ToString().ToLowerInvariant());

    public static IReadOnlyList<PipelineSettingOption> All { get; } =
        [Model, Transformer, Vae, ClipL, ClipG, T5, Parallel, Device, Bf16, ComputeDType, Quantize, Models];

    /// <summary>
    /// The one mapping from option texts onto settings: <paramref name="value"/> gives an option's text by
    /// <see cref="PipelineSettingOption.Name"/> (null: not given, the default stays).
    /// </summary>
    public static PipelineSettings Read(Func<string, string?> value, PipelineSettings defaults) =>
        All.Aggregate(defaults, (settings, option) => value(option.Name) is { } text ? option.Apply(settings, text) : settings);

    /// <summary>Usage lines (<c>  --name &lt;help&gt;   description (default: x)</c>), wrapped at <paramref name="width"/> columns.</summary>
    public static string Usage(PipelineSettings defaults, int nameColumn = 29, int width = 118)
    {
        var text = new System.Text.StringBuilder();
        foreach (var option in All)
        {
            var head = option.IsFlag ? $"  --{option.Name}" : $"  --{option.Name} <{option.HelpName}>";
            var description = option.Shown(defaults) is { } shown ? $"{option.Description} (default: {shown})" : option.Description;
            var line = head.PadRight(nameColumn - 1) + " ";
            foreach (var word in description.Split(' '))
            {
                if (line.Length + word.Length > width && line.Trim().Length > 0 && line.Length > nameColumn)
                {
                    text.AppendLine(line.TrimEnd());
                    line = new string(' ', nameColumn);
                }
                line += word + " ";
            }
            text.AppendLine(line.TrimEnd());
        }
        return text.ToString().TrimEnd();
    }

    /// <summary>The spelling <see cref="ComputeDType"/> accepts for a dtype.</summary>
    public static string DTypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        _ => dtype.ToString().ToLowerInvariant(),
    };

    static PipelineSettingOption Component(string name, string what, Func<ModelSource, string, ModelSource> set) =>
        new(name, "file", $"A file that replaces {what} of --model (safetensors or GGUF).",
            (s, v) => s with { Source = set(s.Source, Existing(name, v, file: true, folder: false)) });

    static string Existing(string option, string path, bool file, bool folder)
    {
        if ((file && File.Exists(path)) || (folder && Directory.Exists(path))) return path;
        throw new SettingException(option, path, folder ? "is not a folder or a file" : "is not a file");
    }

    static ParallelConfig ParallelConfigOf(string id)
    {
        try { return ParallelConfig.Parse(id); }
        catch (Exception e) when (e is FormatException or KeyNotFoundException or ArgumentException)
        {
            throw new SettingException("parallel", id, e.Message);
        }
    }

    static T OneOf<T>(string option, string value, params (string Text, T Value)[] choices)
    {
        foreach (var (text, v) in choices)
            if (string.Equals(text, value, StringComparison.OrdinalIgnoreCase)) return v;
        throw new SettingException(option, value, $"must be {string.Join(" or ", choices.Select(c => c.Text))}");
    }

    static bool Flag(string option, string value) =>
        bool.TryParse(value, out bool on) ? on : throw new SettingException(option, value, "takes no value or true/false");

    static string SupportedQuantizations => string.Join(", ", GgmlCodec.Supported.Select(t => t.ToString().ToLowerInvariant()));

    /// <summary>One of the block types the codec quantizes to; any other ggml type (K-quants, q8_1, f16, …) or word is refused listing those.</summary>
    static GgmlType QuantizationOf(string value) =>
        GgmlCodec.Supported.Where(t => string.Equals(t.ToString(), value, StringComparison.OrdinalIgnoreCase)).Select(t => (GgmlType?)t).SingleOrDefault()
            ?? throw new SettingException("quantize", value, $"is not a quantization this build holds weights in; supported: {SupportedQuantizations}");
}
