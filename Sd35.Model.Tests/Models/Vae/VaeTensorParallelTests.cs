using FluentAssertions;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using Sd35.Models.Vae;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using Sd35.Tools.Numerics;
using Sd35.Tools.Synthetic;
using static TorchSharp.torch;

namespace Sd35.Tests.Models.Vae;

/// <summary>
/// Channel tensor parallelism of the decoder, on a 1 × tp mesh of the in-process backend: each rank loads only its
/// channel shards. That every rank reproduces the golden image is checked once per parallel config
/// (<c>ParallelModelTests</c>, on the devices the reference places the VAE on).
/// </summary>
[Collection(Sd35.Tests.Mesh.MeshRunCollection.Name)]
public class VaeTensorParallelTests
{
    static string TinyFolder => RepoPaths.Fixtures("reference", "vae", "vae_tiny");

    [Fact]
    public void Each_rank_holds_only_its_channel_shards()
    {
        var counts = TensorParallel.Run(2, rank =>
        {
            using var vae = AutoencoderKLDecoder.FromFolder(new ModelFolder(TinyFolder), rank);
            return (vae.decoder.conv_in.weight.shape[0], vae.decoder.mid_block.resnets[0].norm1.weight.shape[0],
                vae.decoder.conv_out.weight.shape[0], vae.decoder.mid_block.attentions[0].to_q.weight.shape[0]);
        });
        // conv_in and norms are halved; the 3-channel conv_out and the single-head attention projections are whole.
        counts.Should().AllBeEquivalentTo((16L, 16L, 3L, 32L));
    }

    [Fact]
    public void A_group_split_across_ranks_is_refused()
    {
        var act = () => TensorParallel.Run(3, rank => new ChannelParallelGroupNorm(8, 24, 1e-6, rank.Tp));
        act.Should().Throw<ArgumentException>().WithMessage("*8 groups*3 ranks*");
    }

    [Fact]
    public void Bf16_convolution_with_few_output_channels_matches_float32()
    {
        // Guards the workaround for libtorch's CPU bf16 convolution (see ChannelParallelConv2d.NeedsFloat32Workaround).
        using var conv = new ChannelParallelConv2d(16, 3, 3, SingleProcessGroup.Instance, inputSharded: false, outputSharded: false, ScalarType.BFloat16);
        RandomWeights.Fill(conv, seed: 3);
        using var input = randn(1, 16, 32, 48).to(ScalarType.BFloat16);
        using var actual = conv.forward(input);
        using var expected = nn.functional.conv2d(input.to(ScalarType.Float32), conv.weight.to(ScalarType.Float32), conv.bias.to(ScalarType.Float32), padding: [1, 1]);
        actual.dtype.Should().Be(ScalarType.BFloat16);
        Quality.Compare(expected, actual).Pcc.Should().BeGreaterThan(0.9999);
    }
}
