using Sd35.Errors;

namespace Sd35.Tensors.Checkpoints.Layouts;

/// <summary>The parts of an SD3 pipeline a weight file can hold.</summary>
public enum ModelComponent { Transformer, Vae, ClipL, ClipG, T5 }

/// <summary>
/// A component read from a file in any of the layouts users hold, seen under the project's (diffusers /
/// transformers) names: the release's single file (<c>model.diffusion_model.</c> MMDiT in the original names,
/// <c>first_stage_model.</c> VAE in ldm names, <c>text_encoders.{clip_l,clip_g,t5xxl}.transformer.</c>), a bare
/// original-named MMDiT (a GGUF file, <c>general.architecture = sd3</c>), a bare ldm VAE, the text-encoder files beside
/// the release (<c>clip_l.safetensors</c> etc. in transformers names), or a component already in diffusers names. A file
/// whose names match none of these is refused with the list of what was looked for.
/// </summary>
public static class SingleFileCheckpoint
{
    /// <summary>How a layout is recognised and mapped: a key prefix that marks it and the rules (null: names as they are).</summary>
    sealed record Layout(ModelComponent Component, string Prefix, string Marker, Func<ICollection<string>, IEnumerable<KeyRule>>? Rules, string Description);

    static readonly Layout[] Layouts =
    [
        new(ModelComponent.Transformer, "model.diffusion_model.", "model.diffusion_model.joint_blocks.", Sd3OriginalLayout.RulesFor, "the release's MMDiT (model.diffusion_model.joint_blocks.…)"),
        new(ModelComponent.Transformer, "", Sd3OriginalLayout.BlockPrefix, Sd3OriginalLayout.RulesFor, "an original-named MMDiT (joint_blocks.…, as in GGUF files)"),
        new(ModelComponent.Transformer, "", "transformer_blocks.", null, "a diffusers transformer (transformer_blocks.…)"),
        new(ModelComponent.Vae, "first_stage_model.", "first_stage_model.decoder.", LdmVaeLayout.RulesFor, "the release's VAE (first_stage_model.decoder.…)"),
        new(ModelComponent.Vae, "", "decoder.up.", LdmVaeLayout.RulesFor, "an ldm VAE (decoder.up.…)"),
        new(ModelComponent.Vae, "", "decoder.up_blocks.", null, "a diffusers VAE (decoder.up_blocks.…)"),
        new(ModelComponent.ClipL, "text_encoders.clip_l.transformer.", "text_encoders.clip_l.transformer.text_model.", null, "CLIP-L in a single file (text_encoders.clip_l.transformer.text_model.…)"),
        new(ModelComponent.ClipL, "", "text_model.encoder.", null, "a CLIP text encoder (text_model.encoder.…)"),
        new(ModelComponent.ClipG, "text_encoders.clip_g.transformer.", "text_encoders.clip_g.transformer.text_model.", null, "CLIP-G in a single file (text_encoders.clip_g.transformer.text_model.…)"),
        new(ModelComponent.ClipG, "", "text_model.encoder.", null, "a CLIP text encoder (text_model.encoder.…)"),
        new(ModelComponent.T5, "text_encoders.t5xxl.transformer.", "text_encoders.t5xxl.transformer.encoder.", null, "T5 in a single file (text_encoders.t5xxl.transformer.encoder.…)"),
        new(ModelComponent.T5, "", "encoder.block.", null, "a T5 encoder (encoder.block.…)"),
        new(ModelComponent.T5, "", GgufT5Layout.BlockPrefix, GgufT5Layout.RulesFor, "a llama.cpp T5 encoder (enc.blk.…, as in GGUF files)"),
    ];

    /// <summary>The components <paramref name="path"/> holds, in pipeline order (headers only).</summary>
    public static IReadOnlyList<ModelComponent> ComponentsIn(string path)
    {
        using var stored = Checkpoint.Open(path);
        var keys = stored.Keys.ToList();
        return Layouts.Where(l => l.Prefix != "" && keys.Any(k => k.StartsWith(l.Marker, StringComparison.Ordinal)))
            .Select(l => l.Component).Distinct().ToList();
    }

    /// <summary>
    /// Opens <paramref name="component"/> from <paramref name="path"/> under the model's names; only that component's
    /// keys are visible (the other parts of a single file are not "unexpected" to it).
    /// </summary>
    public static Checkpoint Open(string path, ModelComponent component)
    {
        var stored = Checkpoint.Open(path);
        try
        {
            var keys = stored.Keys.ToList();
            CheckGgufArchitecture(stored, keys, component);
            var candidates = Layouts.Where(l => l.Component == component).ToList();
            var layout = candidates.FirstOrDefault(l => keys.Any(k => k.StartsWith(l.Marker, StringComparison.Ordinal)))
                ?? throw new CheckpointException(path, null,
                    $"holds no {component} in any known layout: expected {string.Join("; or ", candidates.Select(l => l.Description))}; the file's first keys are {string.Join(", ", keys.Order(StringComparer.Ordinal).Take(5))}");
            var view = Unprefixed(stored, layout.Prefix);
            var own = view.Keys.ToList();
            var mapped = new MappedTensors(view, layout.Rules?.Invoke(own) ?? [], keep: null);
            return Checkpoint.FromFiles(path, [mapped, .. Implied(path, component, mapped)]);
        }
        catch
        {
            stored.Dispose();
            throw;
        }
    }

    /// <summary>The architectures GGUF files declare for the components (<c>general.architecture</c>).</summary>
    static readonly Dictionary<ModelComponent, string[]> GgufArchitectures = new()
    {
        [ModelComponent.Transformer] = ["sd3"], [ModelComponent.T5] = ["t5", "t5encoder"],
    };

    /// <summary>A GGUF file that declares another model (<c>flux</c>, <c>llama</c>…) is refused by that key, not by its names.</summary>
    static void CheckGgufArchitecture(Checkpoint stored, List<string> keys, ModelComponent component)
    {
        if (keys.Count == 0 || stored.FileOf(keys[0]) is not Gguf.GgufFile gguf || gguf.Header.Architecture is not { } architecture) return;
        var expected = GgufArchitectures.GetValueOrDefault(component, []);
        if (!expected.Contains(architecture))
            throw new CheckpointException(gguf.Path, "general.architecture",
                $"declares '{architecture}'; a {component} GGUF file declares {(expected.Length == 0 ? "nothing this project reads" : string.Join(" or ", expected.Select(a => $"'{a}'")))}");
    }

    /// <summary>CLIP-L without <c>text_projection.weight</c> (SD3's text-encoder files): the identity, as diffusers loads it.</summary>
    static IEnumerable<ITensorFile> Implied(string path, ModelComponent component, MappedTensors mapped)
    {
        const string projection = "text_projection.weight", tokens = "text_model.embeddings.token_embedding.weight";
        if (component != ModelComponent.ClipL || mapped.Keys.Contains(projection) || !mapped.Keys.Contains(tokens)) yield break;
        var entry = mapped.Entry(tokens);
        if (entry.Shape.Length != 2) yield break;
        yield return new ConstantTensors(path, new Dictionary<string, TorchSharp.torch.Tensor>
        {
            [projection] = TorchSharp.torch.eye(entry.Shape[1], dtype: TorchSharp.torch.ScalarType.Float32),
        });
    }

    /// <summary>The keys under <paramref name="prefix"/>, without it; a bare layout (no prefix) sees every key.</summary>
    static Checkpoint Unprefixed(Checkpoint stored, string prefix) =>
        prefix == "" ? stored : Checkpoint.FromFiles(stored.Source, [new MappedTensors(stored,
            stored.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Select(k => KeyRule.Same(k[prefix.Length..], k)).ToList(),
            keep: _ => false)]);
}
