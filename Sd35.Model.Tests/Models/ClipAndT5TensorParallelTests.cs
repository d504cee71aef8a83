using FluentAssertions;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Tests.TestSupport;
using static Sd35.Tests.Models.TextEncoderFixtures;
using static TorchSharp.torch;

namespace Sd35.Tests.Models;

/// <summary>
/// The same encoder code with heads and feed-forward split across 2 or 4 ranks (one thread each, AllReduce
/// through shared memory): every rank loads its shards from the unsharded checkpoint by name and must reproduce
/// the single-device goldens.
/// </summary>
[Collection(Sd35.Tests.Mesh.MeshRunCollection.Name)]
public class ClipAndT5TensorParallelTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void Clip_split_across_ranks_matches_the_golden(int tp)
    {
        foreach (var folder in new[] { ClipLFolder, ClipGFolder })
        {
            var io = Golden.ReadAll(Path.Combine(folder, "io.safetensors"));
            var outputs = TensorParallel.Run(tp, group =>
            {
                using var model = ClipTextModel.FromFolder(folder, tp: group);
                model.text_model.encoder.layers[0].mlp.fc1.LocalOutFeatures.Should().Be(model.Config.intermediate_size / tp);
                using var output = model.forward(io["input_ids"]);
                return (Penultimate: output.HiddenState(-2).clone(), TextEmbeds: output.TextEmbeds!.clone());
            });
            foreach (var (output, rank) in outputs.Select((o, r) => (o, r)))
            {
                AssertQuality.Fp32(io["hidden_states.2"], output.Penultimate, $"{folder} tp={tp} rank {rank} hidden_states.2");
                AssertQuality.Fp32(io["text_embeds"], output.TextEmbeds, $"{folder} tp={tp} rank {rank} text_embeds");
            }
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void T5_split_across_ranks_matches_the_golden(int tp)
    {
        var io = Golden.ReadAll(Path.Combine(T5Folder, "io.safetensors"));
        var outputs = TensorParallel.Run(tp, group =>
        {
            using var model = T5EncoderModel.FromFolder(T5Folder, tp: group);
            var table = model.encoder.block[0].SelfAttentionLayer.SelfAttention.relative_attention_bias!;
            table.weight.shape.Should().Equal(model.Config.relative_attention_num_buckets, model.Config.num_heads / tp);
            return model.forward(io["input_ids"]);
        });
        foreach (var (output, rank) in outputs.Select((o, r) => (o, r)))
            AssertQuality.Fp32(io["last_hidden_state"], output, $"T5 tp={tp} rank {rank}");
    }

    [Fact]
    public void Heads_that_do_not_split_evenly_are_refused()
    {
        var act = () => TensorParallel.Run(3, group => new T5EncoderModel(T5Config.T5Xxl, ScalarType.BFloat16, group, Meta));
        act.Should().Throw<ArgumentException>().WithMessage("*64 attention heads*3*");
    }
}
