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
        // Like diffusers with text_encoder_3=None, a folder without T5 runs with zeros in its place.
        string? t5 = Directory.Exists(Path.Combine(modelDir, "text_encoder_3")) ? Part("text_encoder_3") : null;
        var components = new PipelineComponents(
            Part("transformer"), Part("vae"), Part("text_encoder"), Part("text_encoder_2"), t5,
            () => TokenizerSet.FromDiffusersFolder(modelDir),
            ReadScheduler(Path.Combine(Part("scheduler"), "scheduler_config.json")),
            $"SD3 model '{modelDir}'");
        foreach (var tokenizer in t5 is null ? new[] { "tokenizer", "tokenizer_2" } : ["tokenizer", "tokenizer_2", "tokenizer_3"]) Part(tokenizer);
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

    static FlowMatchEulerSchedulerConfig ReadScheduler(string path) => ReadJson(path, FlowMatchEulerSchedulerConfig.FromJson);

    public SD3TransformerConfig TransformerConfig() => SD3TransformerConfig.FromFile(Path.Combine(Transformer, "config.json"));

    /// <summary>The VAE's spatial factor, 2^(number of blocks − 1): 8 for SD3.5.</summary>
    public int VaeScaleFactor() =>
        1 << (ReadJson(Path.Combine(Vae, "config.json"), root => root.IntArray("block_out_channels").Length) - 1);

    /// <summary>Parses a JSON file; a missing file, malformed JSON or a missing field is an error naming the file.</summary>
    static T ReadJson<T>(string path, Func<JsonElement, T> parse)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"'{path}' does not exist.", path);
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            return parse(document.RootElement);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"'{path}': {e.Message}", e);
        }
    }
}
