using FluentAssertions;
using Sd35.Layers.Attention;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.Tests.TestSupport;
using static Sd35.Tests.Mesh.MeshTestTensors;
using static TorchSharp.torch;

using Sd35.Tests.Mesh;

namespace Sd35.Tests.Layers.Attention;

/// <summary>
/// Ring joint attention on 1×n meshes (all ranks on the CPU) against full joint attention over
/// [all spatial tokens ; prompt tokens], computed in float64 on the test thread.
/// </summary>
[Collection(MeshRunCollection.Name)]
public class RingJointAttentionTests
{
    const int Batch = 2, Heads = 3;

    sealed record Inputs(Tensor Q, Tensor K, Tensor V, Tensor PromptQ, Tensor PromptK, Tensor PromptV)
    {
        public static Inputs Create(long spatial, long prompt, long headDim, ScalarType dtype = ScalarType.Float32) => new(
            Seeded(1, dtype, Batch, Heads, spatial, headDim), Seeded(2, dtype, Batch, Heads, spatial, headDim),
            Seeded(3, dtype, Batch, Heads, spatial, headDim), Seeded(4, dtype, Batch, Heads, prompt, headDim),
            Seeded(5, dtype, Batch, Heads, prompt, headDim), Seeded(6, dtype, Batch, Heads, prompt, headDim));

        /// <summary>softmax(QKᵀ/√D)V over the concatenated sequence, in float64.</summary>
        public (Tensor Image, Tensor Prompt) Reference()
        {
            Tensor F64(params Tensor[] parts) => cat(parts, 2).to(ScalarType.Float64);
            var q = F64(Q, PromptQ);
            var k = F64(K, PromptK);
            var scores = matmul(q, k.transpose(-2, -1)) / Math.Sqrt(Q.shape[3]);
            var output = matmul(scores.softmax(-1), F64(V, PromptV));
            return (output.narrow(2, 0, Q.shape[2]), output.narrow(2, Q.shape[2], PromptQ.shape[2]));
        }
    }

    /// <summary>Each rank of a 1×n mesh takes its slice of the spatial sequence (sizes <paramref name="splits"/>) and runs the ring.</summary>
    static MeshRunResult<(Tensor Image, Tensor Prompt)> RunRing(Inputs x, long[] splits, long maxScoreElements = RingJointAttention.DefaultMaxScoreElements)
    {
        splits.Sum().Should().Be(x.Q.shape[2]);
        return MeshRunner.Execute(DeviceMesh.Create(1, splits.Length), rank =>
        {
            using var scope = NewDisposeScope();
            long offset = splits.Take(rank.Id.Value).Sum(), n = splits[rank.Id.Value];
            Tensor Shard(Tensor full) => full.narrow(2, offset, n).clone();
            var (spatial, prompt) = RingJointAttention.Forward(
                Shard(x.Q), Shard(x.K), Shard(x.V), x.PromptQ.clone(), x.PromptK.clone(), x.PromptV.clone(), rank.Axis(1), maxScoreElements);
            return (spatial.MoveToOuterDisposeScope(), prompt.MoveToOuterDisposeScope());
        });
    }

    [Fact]
    public void With_one_rank_it_is_plain_joint_attention_to_the_bit()
    {
        var x = Inputs.Create(spatial: 12, prompt: 5, headDim: 8);
        var (spatial, prompt) = RingJointAttention.Forward(x.Q, x.K, x.V, x.PromptQ, x.PromptK, x.PromptV, SingleProcessGroup.Instance);
        var sdpa = nn.functional.scaled_dot_product_attention(cat([x.Q, x.PromptQ], 2), cat([x.K, x.PromptK], 2), cat([x.V, x.PromptV], 2));
        spatial.ShouldBeBitEqual(sdpa.narrow(2, 0, 12).contiguous(), "spatial output");
        prompt.ShouldBeBitEqual(sdpa.narrow(2, 12, 5).contiguous(), "prompt output");
        var (refSpatial, refPrompt) = x.Reference();
        AssertQuality.Fp32(refSpatial, spatial, "sp 1 spatial");
        AssertQuality.Fp32(refPrompt, prompt, "sp 1 prompt");
    }

    public static TheoryData<long[], long, long> Splits => new()
    {
        { [1], 5, 8 },                        // a one-device mesh: the group of one
        { [6, 6], 5, 8 },                     // sp 2
        { [4, 4, 4, 4], 7, 16 },              // sp 4
        { [5, 1, 9, 3], 4, 8 },               // uneven
        { [4, 0, 6], 3, 8 },                  // a rank without spatial tokens
        { [64, 64, 64, 64], 77, 64 },         // SD3.5-like head dim and prompt share
    };

    [Theory]
    [MemberData(nameof(Splits))]
    public void Sharded_ring_attention_equals_full_joint_attention(long[] splits, long prompt, long headDim)
    {
        var x = Inputs.Create(splits.Sum(), prompt, headDim);
        var results = RunRing(x, splits).Results;
        var (refSpatial, refPrompt) = x.Reference();
        var (localImage, _) = RingJointAttention.Local(x.Q, x.K, x.V, x.PromptQ, x.PromptK, x.PromptV);

        var spatial = cat(results.Select(r => r.Image).ToArray(), 2);
        AssertQuality.Fp32(refSpatial, spatial, $"spatial output, splits [{string.Join(",", splits)}]");
        // Bit-near the single-device fp32 result: only the summation order differs.
        (spatial - localImage).abs().max().item<float>().Should().BeLessThan(2e-6f);

        AssertQuality.Fp32(refPrompt, results[0].Prompt, "prompt output");
        foreach (var r in results) r.Prompt.ShouldBeBitEqual(results[0].Prompt, "the replicated prompt output is identical on every rank");
    }

    [Fact]
    public void Chunking_the_scores_to_bound_memory_changes_nothing_but_rounding()
    {
        var x = Inputs.Create(spatial: 24, prompt: 5, headDim: 8);
        var whole = RunRing(x, [12, 12]).Results;
        var chunked = RunRing(x, [12, 12], maxScoreElements: 64).Results;
        for (int r = 0; r < 2; r++)
        {
            (whole[r].Image - chunked[r].Image).abs().max().item<float>().Should().BeLessThan(1e-6f);
            (whole[r].Prompt - chunked[r].Prompt).abs().max().item<float>().Should().BeLessThan(1e-6f);
        }
    }

    [Fact]
    public void Bf16_blocks_travel_as_bf16_and_are_merged_in_fp32()
    {
        var x = Inputs.Create(spatial: 32, prompt: 6, headDim: 16, ScalarType.BFloat16);
        var results = RunRing(x, [8, 8, 8, 8]).Results;
        var (refSpatial, refPrompt) = x.Reference();
        var spatial = cat(results.Select(r => r.Image).ToArray(), 2);
        spatial.dtype.Should().Be(ScalarType.BFloat16);
        AssertQuality.Close(refSpatial, spatial, minPcc: 0.9999, maxAbsErrorRelative: 1e-2, "bf16 spatial");
        AssertQuality.Close(refPrompt, results[2].Prompt, minPcc: 0.9999, maxAbsErrorRelative: 1e-2, "bf16 prompt");
    }

    /// <summary>Each rank receives every other rank's K and V block once: the ring moves whatever shape a rank holds.</summary>
    [Fact]
    public void The_ring_moves_each_block_once_to_every_other_rank()
    {
        long[] splits = [5, 1, 9, 3];
        var x = Inputs.Create(splits.Sum(), 4, 8);
        var run = RunRing(x, splits);
        long bytesPerToken = Batch * Heads * 8 * sizeof(float);
        for (int r = 0; r < splits.Length; r++)
        {
            var traffic = run.Traffic(r, "axis1")["SendReceive"];
            traffic.Count.Should().Be(2 * (splits.Length - 1), "K and V, sp − 1 steps");
            traffic.BytesReceived.Should().Be(2 * bytesPerToken * (splits.Sum() - splits[r]));
        }
    }

    [Fact]
    public void Inconsistent_shapes_are_refused()
    {
        var x = Inputs.Create(spatial: 4, prompt: 3, headDim: 8);
        var act = () => RingJointAttention.Forward(x.Q, x.K, x.V, x.PromptQ, x.PromptK.narrow(3, 0, 4), x.PromptV, SingleProcessGroup.Instance);
        act.Should().Throw<ArgumentException>().WithMessage("promptKey [2, 3, 3, 4] does not match query [2, 3, 4, 8] in batch, heads or head dim");
        var act2 = () => RingJointAttention.Forward(x.Q, x.K.narrow(2, 0, 3), x.V, x.PromptQ, x.PromptK, x.PromptV, SingleProcessGroup.Instance);
        act2.Should().Throw<ArgumentException>().WithMessage("image query, key and value must hold the same tokens: 4, 3, 4");
    }
}
