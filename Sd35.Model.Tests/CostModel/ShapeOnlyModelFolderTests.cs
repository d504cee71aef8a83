using FluentAssertions;
using Sd35.CostModeling;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Tensors.Checkpoints;

namespace Sd35.Tests.CostModel;

public sealed class ShapeOnlyModelFolderTests
{
    [Fact]
    public void The_configs_written_read_back_as_the_workload()
    {
        var w = Workload.Sd35Large;
        string root = ShapeOnlyModelFolder.Write(w);
        try
        {
            SD3TransformerConfig.FromFile(Path.Combine(root, "transformer", "config.json")).Should().BeEquivalentTo(w.Transformer);
            ClipTextConfig.FromFolder(new ModelFolder(Path.Combine(root, "text_encoder"))).Should().Be(w.ClipL);
            ClipTextConfig.FromFolder(new ModelFolder(Path.Combine(root, "text_encoder_2"))).Should().Be(w.ClipG);
            T5Config.FromFolder(new ModelFolder(Path.Combine(root, "text_encoder_3"))).Should().Be(w.T5);
            new ModelFolder(Path.Combine(root, "vae")).ReadConfig(AutoencoderKLConfig.FromJson).Should().BeEquivalentTo(w.Vae);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
