using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.Models.Transformer;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.Mesh;
using Sd35.Tests.TestSupport;
using Sd35.Tools.Synthetic;
using static TorchSharp.torch;

#pragma warning disable IDE1006 // the class name carries the config id for test selection
namespace Sd35.Tests.Parallel;

/// <summary>
/// One full-width SD3.5 Large joint block (hidden 2432, 38 heads, 4096 + 333 tokens) on t3k_cfg2_sp2_tp2 in fp32
/// against one device. Slow (minutes on two cores, several GB): excluded from the default run, selected with
/// <c>dotnet test --settings Sd35.all.runsettings --filter "Category=Slow&amp;FullyQualifiedName~t3k_cfg2_sp2_tp2"</c>.
/// </summary>
[Collection(MeshRunCollection.Name)]
[Trait("Category", "Slow")]
public sealed class t3k_cfg2_sp2_tp2_full_width_block
{
    [Fact]
    public void Sd35_large_block_matches_one_device()
    {
        var config = SD3TransformerConfig.SD35Large;
        using var dir = new TempDirectory();
        var weights = dir.File("block.safetensors");
        Tensor expectedImage, expectedPrompt;
        manual_seed(21);
        var image = randn(1, 4096, config.InnerDim);
        var prompt = randn(1, 333, config.InnerDim);
        var temb = randn(1, config.InnerDim);
        using (var single = new JointTransformerBlock(config, 0, MeshRank.Single()))
        {
            RandomWeights.Fill(single, seed: 22);
            SafetensorsWriter.Write(weights, single.state_dict());
            var (p, i) = single.Forward(image, prompt, temb);
            (expectedImage, expectedPrompt) = (i, p!);
        }

        var results = MeshRunner.Run(ParallelConfig.Parse("t3k_cfg2_sp2_tp2"), placed =>
        {
            var rank = placed;
            using var block = new JointTransformerBlock(config, 0, rank);
            using (var checkpoint = Checkpoint.Open(weights)) CheckpointLoader.Load(block, checkpoint);
            var (p, i) = block.Forward(MeshLayout.ImageShard(image, rank), MeshLayout.Shard(prompt, rank.Tp, -1), temb);
            return (Image: MeshLayout.GatherImage(i, rank), Prompt: rank.Tp.AllGather(p!, -1));
        });
        foreach (var (result, device) in results.Select((r, d) => (r, d)))
        {
            AssertQuality.Close(expectedImage, result.Image, 0.99999, 1e-4, $"full-width block image stream, device {device}");
            AssertQuality.Close(expectedPrompt, result.Prompt, 0.99999, 1e-4, $"full-width block prompt stream, device {device}");
        }
    }
}
