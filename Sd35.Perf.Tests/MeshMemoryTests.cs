using FluentAssertions;
using Sd35.Mesh;
using Sd35.Pipeline;
using Sd35.Tools.Synthetic;
using static TorchSharp.torch;

namespace Sd35.Perf.Tests;

/// <summary>
/// <c>mesh-memory</c>'s per-device weight bytes on a tiny synthetic SD3.5-layout folder: the shards each device's
/// stage would load, from the pipeline's own model building on the meta device.
/// </summary>
public sealed class MeshMemoryTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("sd35-mesh-memory-").FullName;

    public MeshMemoryTests() => SyntheticModelFolder.Write(_folder, SyntheticModelPreset.Tiny);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    (DeviceId Device, long Transformer, long Encoders, long Vae)[] PerDevice(string configId) =>
        [.. MeshMemoryCommand.PerDevice(PipelineComponents.FromDiffusersFolder(_folder), ParallelConfig.Parse(configId), ScalarType.BFloat16)];

    [Fact]
    public void Each_device_holds_its_shards_of_the_models_its_stages_place_on_it()
    {
        var alone = PerDevice("n150_cfg1_sp1_tp1").Should().ContainSingle().Subject;
        alone.Transformer.Should().BeGreaterThan(0);
        alone.Encoders.Should().BeGreaterThan(0);
        alone.Vae.Should().BeGreaterThan(0);

        PerDevice("n300_cfg1_sp2_tp1").Should().OnlyContain(r => r.Transformer == alone.Transformer, "sequence parallelism shards activations, not weights");

        var t3k = PerDevice("t3k_cfg2_sp2_tp2");
        t3k.Should().HaveCount(8);
        t3k.Should().OnlyContain(r => r.Transformer > alone.Transformer / 2 && r.Transformer < alone.Transformer,
            "tp 2 halves the sharded linears; norms and the position table stay whole on every device");
        var holding = t3k.Where(r => r.Encoders > 0).ToArray();
        holding.Should().NotBeEmpty().And.OnlyContain(r => r.Encoders < alone.Encoders, "the text encoders are tensor parallel over a submesh");
        holding.Sum(r => r.Encoders).Should().BeGreaterThanOrEqualTo(alone.Encoders, "the shards together cover the whole encoders");
    }

    [Fact]
    public void A_folder_without_T5_counts_the_two_CLIPs_only_as_the_pipeline_runs_it()
    {
        long withT5 = PerDevice("n150_cfg1_sp1_tp1")[0].Encoders;
        Directory.Delete(Path.Combine(_folder, "text_encoder_3"), recursive: true);
        Directory.Delete(Path.Combine(_folder, "tokenizer_3"), recursive: true);

        var withoutT5 = PerDevice("n150_cfg1_sp1_tp1")[0];
        withoutT5.Encoders.Should().BeGreaterThan(0).And.BeLessThan(withT5);
    }
}
