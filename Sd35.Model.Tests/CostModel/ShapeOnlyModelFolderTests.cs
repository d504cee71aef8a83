using FluentAssertions;
using Sd35.CostModeling;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;

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
            ShapeOnlyModelFolder.Folder(root, "transformer").ReadConfig<SD3TransformerConfig>().Should().BeEquivalentTo(w.Transformer);
            ShapeOnlyModelFolder.Folder(root, "text_encoder").ReadConfig<ClipTextConfig>().Should().Be(w.ClipL);
            ShapeOnlyModelFolder.Folder(root, "text_encoder_2").ReadConfig<ClipTextConfig>().Should().Be(w.ClipG);
            ShapeOnlyModelFolder.Folder(root, "text_encoder_3").ReadConfig<T5Config>().Should().Be(w.T5);
            ShapeOnlyModelFolder.Folder(root, "vae").ReadConfig<AutoencoderKLConfig>().Should().BeEquivalentTo(w.Vae);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
