using FluentAssertions;
using Sd35.Errors;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Checkpoints.Layouts;
using Sd35.Tensors.Quantization;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Tensors.Formats;

/// <summary><see cref="PipelineComponents.From"/>: a folder, a single file with its text-encoder files, and component overrides.</summary>
public class ModelSourceTests
{
    [Fact]
    public void A_folder_with_every_part_replaced_by_files_in_other_layouts_makes_the_folders_image_bit_for_bit()
    {
        using var model = new TinyModelCopy();
        using var dir = new TempDirectory();
        var gguf = dir.File("sd3_transformer.gguf");
        using (var transformer = new ModelFolder(model.Transformer).OpenCheckpoint()) OriginalLayoutWriter.WriteGguf(gguf, transformer, GgmlType.F32);
        var single = dir.File("sd3.5_tiny.safetensors");
        WriteSingleFile(model.Root, single, ModelComponent.Vae, ModelComponent.ClipL, ModelComponent.ClipG, ModelComponent.T5);

        var source = new ModelSource { Model = model.Root, Transformer = gguf, Vae = single, ClipL = single, ClipG = single, T5 = single };
        var replaced = PipelineComponents.From(source);
        replaced.Transformer.WeightsFile.Should().Be(gguf);
        replaced.TextEncoder3!.WeightsFile.Should().Be(single);
        Preflight.Check(replaced, TinyModelCopy.Request);

        using var expected = new StableDiffusion3Pipeline(model.Components()).Generate(TinyModelCopy.Request);
        using var actual = new StableDiffusion3Pipeline(replaced).Generate(TinyModelCopy.Request);
        actual.Image.Equals(expected.Image).Should().BeTrue("the same weights in other layouts, with the folder's configs, are the same model");
    }

    [Fact]
    public void A_single_file_finds_its_text_encoders_beside_it_and_infers_every_config()
    {
        using var model = new TinyModelCopy();
        using var dir = new TempDirectory();
        var single = dir.File("sd3.5_tiny.safetensors");
        WriteSingleFile(model.Root, single, ModelComponent.Transformer, ModelComponent.Vae);
        Directory.CreateDirectory(dir.File("text_encoders"));
        File.Copy(Path.Combine(model.Root, "text_encoder", "model.safetensors"), dir.File("clip_l.safetensors"));
        File.Copy(Path.Combine(model.Root, "text_encoder_2", "model.safetensors"), dir.File(Path.Combine("text_encoders", "clip_g.safetensors")));
        File.Copy(Path.Combine(model.Root, "text_encoder_3", "model.safetensors"), dir.File("t5xxl_fp16.safetensors"));

        var components = PipelineComponents.From(new ModelSource { Model = single });

        components.TextEncoder.WeightsFile.Should().Be(dir.File("clip_l.safetensors"));
        components.TextEncoder2.WeightsFile.Should().Be(dir.File(Path.Combine("text_encoders", "clip_g.safetensors")));
        components.TransformerConfig.NumLayers.Should().Be(new ModelFolder(model.Transformer).ReadConfig<Sd35.Models.Transformer.SD3TransformerConfig>().NumLayers);
        components.TextEncoder3Config!.DModel.Should().Be(components.TransformerConfig.JointAttentionDim);
        Preflight.Check(components, TinyModelCopy.Request);
    }

    [Fact]
    public void A_single_file_without_text_encoders_names_what_is_missing()
    {
        using var model = new TinyModelCopy();
        using var dir = new TempDirectory();
        var single = dir.File("sd3.5_tiny.safetensors");
        WriteSingleFile(model.Root, single, ModelComponent.Transformer, ModelComponent.Vae);
        var act = () => PipelineComponents.From(new ModelSource { Model = single });
        act.Should().Throw<CheckpointException>().WithMessage("*holds no ClipL*--clip-l*clip_l.safetensors*");
    }

    [Fact]
    public void An_override_whose_shapes_do_not_fit_the_folders_config_fails_preflight_naming_the_file()
    {
        using var model = new TinyModelCopy();
        using var dir = new TempDirectory();
        var gguf = dir.File("other.gguf");
        // The VAE as a "transformer": no known transformer layout.
        using (var vae = new ModelFolder(model.Vae).OpenCheckpoint())
            Sd35.Tensors.Gguf.GgufWriter.Write(gguf, vae.Keys.Select(k => new Sd35.Tensors.Gguf.GgufTensor(k, GgmlType.F32, vae.Entry(k).Shape, () => vae.Read(k))).ToList());
        var act = () => PipelineComponents.From(new ModelSource { Model = model.Root, Transformer = gguf });
        act.Should().Throw<CheckpointException>().Which.File.Should().Be(gguf);

        // A transformer file whose widths differ from the folder's config: refused by Preflight before any weight is read.
        var wide = dir.File("wide.gguf");
        using (var transformer = new ModelFolder(model.Transformer).OpenCheckpoint())
            Sd35.Tensors.Gguf.GgufWriter.Write(wide, transformer.Keys.Select(k =>
            {
                var shape = transformer.Entry(k).Shape;
                long[] wider = k == "proj_out.bias" ? [shape[0] * 2] : shape;
                return new Sd35.Tensors.Gguf.GgufTensor(k, GgmlType.F32, wider, () => zeros(wider));
            }).ToList());
        var components = PipelineComponents.From(new ModelSource { Model = model.Root, Transformer = wide });
        var preflight = () => Preflight.Check(components, TinyModelCopy.Request);
        preflight.Should().Throw<CheckpointException>().WithMessage("*proj_out.bias*shape*");
    }

    [Fact]
    public void A_clip_l_file_without_text_projection_loads_with_the_identity_as_diffusers_does()
    {
        using var model = new TinyModelCopy();
        using var dir = new TempDirectory();
        var file = dir.File("clip_l.safetensors");
        var state = Golden.ReadAll(Path.Combine(model.Root, "text_encoder", "model.safetensors"));
        var width = state["text_model.embeddings.token_embedding.weight"].shape[1];
        state.Remove("text_projection.weight");
        SafetensorsWriter.Write(file, state);

        using var checkpoint = SingleFileCheckpoint.Open(file, ModelComponent.ClipL);
        using var projection = checkpoint.Read("text_projection.weight");
        projection.Equals(eye(width)).Should().BeTrue();
        using var clipG = SingleFileCheckpoint.Open(file, ModelComponent.ClipG);
        clipG.Contains("text_projection.weight").Should().BeFalse("only CLIP-L's pooled output is used unprojected");
    }

    [Fact]
    public void A_t5_gguf_in_llama_cpp_names_encodes_as_the_folder_bit_for_bit()
    {
        using var scope = NewDisposeScope();
        using var model = new TinyModelCopy();
        using var dir = new TempDirectory();
        var t5Folder = Path.Combine(model.Root, "text_encoder_3");
        var gguf = dir.File("t5xxl.gguf");
        using (var checkpoint = new ModelFolder(t5Folder).OpenCheckpoint())
        {
            var stored = OriginalLayoutWriter.Stored(checkpoint, ModelComponent.T5, GgufT5Layout.RulesForModel);
            stored.Select(t => t.Name).Should().Contain("token_embd.weight").And.Contain("enc.blk.0.attn_rel_b.weight").And.OnlyHaveUniqueItems();
            Sd35.Tensors.Gguf.GgufWriter.Write(gguf, stored.Select(t => new Sd35.Tensors.Gguf.GgufTensor(t.Name, GgmlType.F32, t.Shape, t.Read)).ToList());
        }
        using var expected = Sd35.Models.T5.T5EncoderModel.FromFolder(new ModelFolder(t5Folder));
        using var actual = Sd35.Models.T5.T5EncoderModel.FromFolder(PipelineComponents.FromFile(gguf, ModelComponent.T5, t5Folder));
        using var ids = arange(0, 12, dtype: ScalarType.Int64).unsqueeze(0);
        actual.forward(ids).Equals(expected.forward(ids)).Should().BeTrue();
    }

    static void WriteSingleFile(string folder, string path, params ModelComponent[] parts)
    {
        var names = new Dictionary<ModelComponent, string>
        {
            [ModelComponent.Transformer] = "transformer", [ModelComponent.Vae] = "vae", [ModelComponent.ClipL] = "text_encoder",
            [ModelComponent.ClipG] = "text_encoder_2", [ModelComponent.T5] = "text_encoder_3",
        };
        var opened = parts.ToDictionary(p => p, p => new ModelFolder(Path.Combine(folder, names[p])).OpenCheckpoint());
        try { OriginalLayoutWriter.WriteSingleFile(path, opened); }
        finally { foreach (var c in opened.Values) c.Dispose(); }
    }
}
