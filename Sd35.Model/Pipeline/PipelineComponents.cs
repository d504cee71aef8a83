using System.Text.Json;
using Sd35.Errors;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Tensors.Checkpoints;
using Sd35.Tokenizers;

namespace Sd35.Pipeline;

/// <summary>
/// The parts of an SD3 pipeline: each model's folder with its config, read and validated once here, before any
/// work. No weights are loaded here: the pipeline loads each model only for its stage and releases it afterwards,
/// so SD3.5 Large fits a 24 GB machine. The models load from the same <see cref="ModelFolder"/>s and so see the
/// same config records (a folder reads its config once).
/// </summary>
public sealed partial class PipelineComponents
{
    public PipelineComponents(ModelFolder transformer, ModelFolder vae, ModelFolder textEncoder, ModelFolder textEncoder2, ModelFolder? textEncoder3,
        Func<TokenizerSet> tokenizers, FlowMatchEulerSchedulerConfig scheduler, string description)
    {
        (Transformer, Vae, TextEncoder, TextEncoder2, TextEncoder3) = (transformer, vae, textEncoder, textEncoder2, textEncoder3);
        // Tokenizers are immutable tables, shared by every generation and rank thread: read once, on first use (Preflight's
        // check is the read the run then uses).
        var once = new Lazy<TokenizerSet>(tokenizers, LazyThreadSafetyMode.ExecutionAndPublication);
        Tokenizers = () => once.Value;
        (Scheduler, Description) = (scheduler, description);
        TransformerConfig = transformer.ReadConfig<SD3TransformerConfig>();
        VaeConfig = vae.ReadConfig<AutoencoderKLConfig>();
        TextEncoderConfig = textEncoder.ReadConfig<ClipTextConfig>();
        TextEncoder2Config = textEncoder2.ReadConfig<ClipTextConfig>();
        TextEncoder3Config = textEncoder3?.ReadConfig<T5Config>();
        CheckTheyFitTogether();
    }

    public ModelFolder Transformer { get; }
    public ModelFolder Vae { get; }
    public ModelFolder TextEncoder { get; }
    public ModelFolder TextEncoder2 { get; }
    /// <summary>null runs without T5, as diffusers with <c>text_encoder_3=None</c>.</summary>
    public ModelFolder? TextEncoder3 { get; }
    /// <summary>The tokenizers, read on the first call and the same object after it.</summary>
    public Func<TokenizerSet> Tokenizers { get; }
    public FlowMatchEulerSchedulerConfig Scheduler { get; }
    public string Description { get; }

    public SD3TransformerConfig TransformerConfig { get; }
    public AutoencoderKLConfig VaeConfig { get; }
    public ClipTextConfig TextEncoderConfig { get; }
    public ClipTextConfig TextEncoder2Config { get; }
    public T5Config? TextEncoder3Config { get; }

    /// <summary>A diffusers SD3 / SD3.5 folder: transformer/, vae/, text_encoder{,_2,_3}/, tokenizer{,_2,_3}/, scheduler/.</summary>
    public static PipelineComponents FromDiffusersFolder(string modelDir)
    {
        if (!Directory.Exists(modelDir)) throw new ModelFolderException(modelDir, "the model folder does not exist");
        string Part(string name)
        {
            var path = Path.Combine(modelDir, name);
            if (!Directory.Exists(path)) throw new ModelFolderException(modelDir, $"has no '{name}/' part (the SD3 pipeline needs it)");
            return path;
        }
        // Like diffusers with text_encoder_3=None, a folder without T5 runs with zeros in its place.
        bool hasT5 = Directory.Exists(Path.Combine(modelDir, "text_encoder_3"));
        var parts = hasT5 ? new[] { "tokenizer", "tokenizer_2", "tokenizer_3" } : ["tokenizer", "tokenizer_2"];
        foreach (var part in new[] { "transformer", "vae", "text_encoder", "text_encoder_2", "scheduler" }.Concat(parts)) Part(part);
        var scheduler = new ModelFolder(Part("scheduler")).ReadConfig<FlowMatchEulerSchedulerConfig>(FlowMatchEulerSchedulerConfig.FileName);
        return new PipelineComponents(
            new ModelFolder(Part("transformer")), new ModelFolder(Part("vae")), new ModelFolder(Part("text_encoder")),
            new ModelFolder(Part("text_encoder_2")), hasT5 ? new ModelFolder(Part("text_encoder_3")) : null,
            () => TokenizerSet.FromDiffusersFolder(modelDir), scheduler, $"SD3 model '{modelDir}'");
    }

    /// <summary>
    /// A pipeline golden's <c>case.json</c>: components named relative to the reference folder, the default
    /// tokenizer files, and the scheduler shift the case was made with.
    /// </summary>
    public static PipelineComponents FromCase(string caseJsonPath, string referenceDir, Func<TokenizerSet> tokenizers)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(caseJsonPath));
        var root = document.RootElement;
        var parts = root.GetProperty("components");
        ModelFolder Part(string name) => new(Path.Combine(referenceDir, parts.GetProperty(name).GetString()
            ?? throw new ConfigException(caseJsonPath, $"$.components.{name}", "is not a string")));
        ModelFolder? Optional(string name) => parts.TryGetProperty(name, out var v) && v.GetString() is { } s ? new(Path.Combine(referenceDir, s)) : null;
        double shift = root.TryGetProperty("shift", out var value) ? value.GetDouble() : 3.0;
        return new PipelineComponents(Part("transformer"), Part("vae"), Part("text_encoder"), Part("text_encoder_2"), Optional("text_encoder_3"),
            tokenizers, new FlowMatchEulerSchedulerConfig { Shift = shift }, $"reference case '{caseJsonPath}'");
    }

    /// <summary>The widths one part hands to the next must agree; checked here so a mismatch fails before any weights load.</summary>
    void CheckTheyFitTogether()
    {
        var transformer = new ConfigRules(Transformer.ConfigPath);
        var t = TransformerConfig;
        transformer.That(VaeConfig.LatentChannels == t.InChannels && VaeConfig.LatentChannels == t.OutChannels, "in_channels",
            $"in_channels {t.InChannels} and out_channels {t.OutChannels} must equal the VAE's latent_channels {VaeConfig.LatentChannels} ({Vae.ConfigPath})");
        var widths = Sd3PromptEncoder.WidthProblem(TextEncoderConfig, TextEncoder2Config, TextEncoder3Config, t.JointAttentionDim);
        transformer.That(widths is null, "joint_attention_dim", widths!);
        transformer.That(TextEncoderConfig.ProjectionDim + TextEncoder2Config.ProjectionDim == t.PooledProjectionDim, "pooled_projection_dim",
            $"{t.PooledProjectionDim} must equal the CLIP projection_dims together ({TextEncoderConfig.ProjectionDim} + {TextEncoder2Config.ProjectionDim})");
        foreach (var (folder, clip) in new[] { (TextEncoder, TextEncoderConfig), (TextEncoder2, TextEncoder2Config) })
            new ConfigRules(folder.ConfigPath).That(clip.MaxPositionEmbeddings >= Sd3PromptEncoder.ClipTokens, "max_position_embeddings",
                $"{clip.MaxPositionEmbeddings} is shorter than the {Sd3PromptEncoder.ClipTokens} tokens SD3 gives CLIP");
    }
}
