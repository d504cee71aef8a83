using Sd35.Tensors.Checkpoints;
using System.Text.Json;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Pipeline;
using Sd35.Tests.TestSupport;
using Sd35.Tokenizers;
using static TorchSharp.torch;

namespace Sd35.Tests.Pipeline;

/// <summary>
/// One end-to-end golden under fixtures/ (<c>case.json</c> + <c>io.safetensors</c>): the request, its stored
/// tensors, and the tiny text encoders its <c>components</c> name (paths relative to fixtures/reference).
/// </summary>
sealed class PipelineCase
{
    public string Name { get; }
    public string Prompt { get; }
    public string NegativePrompt { get; }
    public int MaxSequenceLength { get; }
    public Dictionary<string, Tensor> Io { get; }
    readonly Dictionary<string, string> _components;

    PipelineCase(string relativeFolder)
    {
        Name = relativeFolder;
        var folder = Golden.Resolve(relativeFolder);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "case.json")));
        var root = json.RootElement;
        Prompt = root.GetProperty("prompt").GetString()!;
        NegativePrompt = root.GetProperty("negative_prompt").GetString()!;
        MaxSequenceLength = root.GetProperty("max_sequence_length").GetInt32();
        _components = root.GetProperty("components").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        Io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
    }

    /// <summary>The text-to-image cases that store the prompt's token ids and embeddings (the prompt-encoder goldens).</summary>
    static IEnumerable<string> Folders => Golden.CaseFolders("clip_l_ids", "clip_g_ids", "t5_ids", "prompt_embeds");

    public static TheoryData<string> Cases => Golden.Cases(Folders);

    /// <summary>Any one case, for tests of behaviour that does not depend on the prompt.</summary>
    public static PipelineCase First() => new(Path.GetRelativePath(RepoPaths.Fixtures(), Folders.First()));

    public static PipelineCase Load(string relativeFolder) => new(relativeFolder);

    public string Component(string name) => RepoPaths.Fixtures("reference", _components[name]);

    /// <summary>The transformer's <c>joint_attention_dim</c>, the width of every prompt token.</summary>
    public int JointAttentionDim => new ModelFolder(Component("transformer")).ReadConfig<Sd35.Models.Transformer.SD3TransformerConfig>().JointAttentionDim;

    public ClipTextModel ClipL(ScalarType dtype = ScalarType.Float32) => ClipTextModel.FromFolder(new ModelFolder(Component("text_encoder")), dtype: dtype);
    public ClipTextModel ClipG(ScalarType dtype = ScalarType.Float32) => ClipTextModel.FromFolder(new ModelFolder(Component("text_encoder_2")), dtype: dtype);
    public T5EncoderModel T5(ScalarType dtype = ScalarType.Float32) => T5EncoderModel.FromFolder(new ModelFolder(Component("text_encoder_3")), dtype: dtype);

    public Sd3PromptEncoder Encoder(bool withT5 = true, TokenizerSet? tokenizers = null) =>
        new(ClipL(), ClipG(), withT5 ? T5() : null, JointAttentionDim, tokenizers);
}
