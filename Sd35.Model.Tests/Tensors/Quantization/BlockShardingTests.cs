using FluentAssertions;
using Sd35.Layers.Parallel;
using Sd35.Tensors.Quantization;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

namespace Sd35.Tests.Tensors.Quantization;

/// <summary>
/// SD3.5 Large's widths cut into whole blocks: the rows of 2432 (and 2560, padded from 38 to 40 heads) split for
/// tp 2 and 4 on 32-element block boundaries, so each rank's blocks are exactly the blocks of its piece of the values
/// (cutting blocks = quantizing the cut values), for the row-parallel cut of the input features and the column-parallel
/// input padding alike.
/// </summary>
public sealed class BlockShardingTests
{
    [Theory]
    [InlineData(2, 2432, 0)]
    [InlineData(4, 2432, 0)]
    [InlineData(2, 2432, 2560)]
    [InlineData(4, 2432, 2560)]
    public void Row_parallel_blocks_are_the_blocks_of_the_rank_s_values(int tp, long inFeatures, long paddedIn)
    {
        manual_seed(5);
        var full = randn(6, inFeatures);
        TensorParallel.Run(tp, rank =>
        {
            var group = rank.Tp;
            using var layer = new RowParallelLinear(inFeatures, 6, group, RowReduction.AllReduce, hasBias: false, paddedIn: paddedIn);
            layer.CanHoldBlocks(GgmlType.Q8_0, inFeatures).Should().BeTrue($"rank {group.Rank} of {tp}: {layer.WeightShape[1]} is whole blocks");
            using var blocks = QuantizedWeight.Quantize(full, GgmlType.Q8_0);
            using var piece = layer.ShardBlocks(blocks);
            using var values = layer.ShardFromFull("weight", full)!;
            using var expected = QuantizedWeight.Quantize(values, GgmlType.Q8_0);
            piece.Shape.Should().Equal(layer.WeightShape);
            piece.Blocks.Equals(expected.Blocks).Should().BeTrue($"rank {group.Rank} of {tp}");
            return 0;
        });
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void Column_parallel_blocks_with_padded_input_are_the_blocks_of_the_rank_s_values(int tp)
    {
        manual_seed(6);
        var full = randn(8 * 6, 2432);
        TensorParallel.Run(tp, rank =>
        {
            var group = rank.Tp;
            using var layer = new ColumnParallelLinear(2432, 8 * 6, group, hasBias: false, paddedIn: 2560, chunks: 6);
            layer.CanHoldBlocks(GgmlType.Q4_1, 2432).Should().BeTrue();
            using var blocks = QuantizedWeight.Quantize(full, GgmlType.Q4_1);
            using var piece = layer.ShardBlocks(blocks);
            using var values = layer.ShardFromFull("weight", full)!;
            using var expected = QuantizedWeight.Quantize(values, GgmlType.Q4_1);
            piece.Blocks.Equals(expected.Blocks).Should().BeTrue($"rank {group.Rank} of {tp}");
            return 0;
        });
    }

    [Fact]
    public void A_cut_inside_a_block_cannot_hold_blocks()
    {
        // The tiny transformer's attention output at tp 4 (64 / 4 = 16 features per rank): such a rank keeps the
        // blocks' values expanded instead (see QuantizedTransformerMeshTests).
        TensorParallel.Run(4, rank =>
        {
            var group = rank.Tp;
            using var layer = new RowParallelLinear(64, 8, group, RowReduction.AllReduce);
            layer.CanHoldBlocks(GgmlType.Q8_0, 64).Should().BeFalse();
            return 0;
        });
    }
}
