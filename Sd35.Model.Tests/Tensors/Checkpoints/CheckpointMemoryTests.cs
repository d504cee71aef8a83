using FluentAssertions;
using Sd35.Layers.Parallel;
using Sd35.Mesh;
using Sd35.Tensors.Checkpoints;
using Sd35.Tests.TestSupport;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Sd35.Tests.Tensors.Checkpoints;

[Collection(MemoryMeasurementCollection.Name)]
public class CheckpointMemoryTests(ITestOutputHelper output)
{
    [PeakMemoryFact]
    public void Loading_needs_about_the_models_own_memory_not_twice_it()
    {
        const long features = 8192; // one 8192 × 8192 fp32 weight: 256 MiB
        const long modelBytes = features * features * 4;
        using var dir = new TempDirectory();
        var path = dir.File("big.safetensors");
        using (var weight = randn(features, features))
            SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["weight"] = weight, ["bias"] = zeros(features) });

        ColumnParallelLinear? model = null;
        var (before, peak) = PeakMemory.Measure(() =>
        {
            model = new ColumnParallelLinear(features, features, SingleProcessGroup.Instance);
            using var checkpoint = Checkpoint.Open(path);
            CheckpointLoader.Load(model, checkpoint);
        });
        using var loaded = model!;
        double ratio = (double)(peak - before) / modelBytes;
        output.WriteLine($"model {modelBytes >> 20} MiB, peak growth {(peak - before) >> 20} MiB ({ratio:F2}×)");
        ratio.Should().BeLessThan(1.3, "tensors are read straight into the parameters' storage");
        loaded.weight.abs().sum().item<float>().Should().BeGreaterThan(0);
    }
}
