using System.Text.Json;
using Sd35.Models.Transformer;
using Sd35.Tensors;
using Sd35.Tokenizers;

namespace Sd35.Pipeline;

/// <summary>
/// Where each part of an SD3 pipeline lives. Nothing is loaded here: the pipeline loads each part only for
/// its stage and releases it afterwards, so SD3.5 Large fits a 24 GB machine. Every path is checked up front,
/// so a missing part is reported by name before any work starts.
/// </summary>
public sealed record PipelineComponents(
    string Transformer, string Vae, string TextEncoder, string TextEncoder2, string? TextEncoder3,
    Func<TokenizerSet> Tokenizers, FlowMatchEulerSchedulerConfig Scheduler, string Description)
{
    /// <summary>A diffusers SD3 / SD3.5 folder: transformer/, vae/, text_encoder{,_2,_3}/, tokenizer{,_2,_3}/, scheduler/.</summary>
    public static PipelineComponents FromDiffusersFolder(string modelDir)
    {
        if (!Directory.Exists(modelDir)) throw new DirectoryNotFoundException($"Model folder '{modelDir}' does not exist.");
        string Part(string name)
        {
            var path = Path.Combine(modelDir, name);
            if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"Model folder '{modelDir}' has no '{name}/' part (the SD3 pipeline needs it).");
            if (!File.Exists(Path.Combine(path, "config.json")) && !name.StartsWith("tokenizer") && name != "scheduler")
                throw new FileNotFoundException($"Model part '{name}/' in '{modelDir}' has no config.json.");
            return path;
        }
        var components = new PipelineComponents(
            Part("transformer"), Part("vae"), Part("text_encoder"), Part("text_encoder_2"), Part("text_encoder_3"),
            () => TokenizerSet.FromDiffusersFolder(modelDir),
            ReadScheduler(Path.Combine(Part("scheduler"), "scheduler_config.json")),
            $"SD3 model '{modelDir}'");
        foreach (var tokenizer in new[] { "tokenizer", "tokenizer_2", "tokenizer_3" }) Part(tokenizer);
        return components;
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
        string Part(string name) => Path.Combine(referenceDir, parts.GetProperty(name).GetString()
            ?? throw new InvalidDataException($"'{caseJsonPath}': component '{name}' is not a string"));
        string? Optional(string name) => parts.TryGetProperty(name, out var v) && v.GetString() is { } s ? Path.Combine(referenceDir, s) : null;
        return new PipelineComponents(Part("transformer"), Part("vae"), Part("text_encoder"), Part("text_encoder_2"), Optional("text_encoder_3"),
            tokenizers, new FlowMatchEulerSchedulerConfig(Shift: root.Double("shift", 3.0)), $"reference case '{caseJsonPath}'");
    }

    static FlowMatchEulerSchedulerConfig ReadScheduler(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"'{path}' does not exist (the scheduler part needs it).", path);
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return FlowMatchEulerSchedulerConfig.FromJson(document.RootElement);
    }

    public SD3TransformerConfig TransformerConfig() => SD3TransformerConfig.FromJson(File.ReadAllText(Path.Combine(Transformer, "config.json")));

    /// <summary>The VAE's spatial factor, 2^(number of blocks − 1): 8 for SD3.5.</summary>
    public int VaeScaleFactor()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(Vae, "config.json")));
        return 1 << (document.RootElement.IntArray("block_out_channels").Length - 1);
    }
}
