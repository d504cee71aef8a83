using FluentAssertions;
using Sd35.Layers;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.Models.Transformer;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using Sd35.Tests.Mesh;
using Sd35.Tests.TestSupport;
using static TorchSharp.torch;

// As PerConfigTests.cs: one class per config, named by its id, so `dotnet test --filter <id>` selects these too.
#pragma warning disable IDE1006 // class names are config ids on purpose
namespace Sd35.Tests.Parallel.Quantized
{
    public sealed class t3k_cfg2_sp2_tp2() : QuantizedTransformerMeshTests("t3k_cfg2_sp2_tp2");
    public sealed class tg_cfg2_sp4_tp4() : QuantizedTransformerMeshTests("tg_cfg2_sp4_tp4");
    public sealed class qb_cfg1_sp1_tp4() : QuantizedTransformerMeshTests("qb_cfg1_sp1_tp4");
}

namespace Sd35.Tests.Parallel
{
    /// <summary>
    /// A transformer quantized at load, on a mesh, against the same quantized transformer on one device: the blocks are
    /// made from the whole checkpoint tensor and then cut on block boundaries, so every rank computes with exactly the
    /// values one device computes with, and the only difference left is the mesh's summation order (the fp32 mesh
    /// bars of <see cref="ParallelModelTests"/>). Every rank must hold blocks (the memory the quantization is for).
    /// </summary>
    [Collection(MeshRunCollection.Name)]
    public abstract class QuantizedTransformerMeshTests(string id)
    {
        ParallelConfig Config { get; } = ParallelConfig.Parse(id);
        static string TinyTransformer => RepoPaths.Fixtures("reference", "transformer", "tiny");

        [Theory]
        [InlineData(GgmlType.Q8_0)]
        [InlineData(GgmlType.Q4_0)]
        public void Quantized_transformer_matches_one_device(GgmlType type)
        {
            var io = Golden.ReadAll(Path.Combine(TinyTransformer, "io.safetensors"));
            var storage = new WeightStorage { Quantize = type };
            Tensor Run(SD3Transformer2DModel model) =>
                model.Forward(io["hidden_states"], io["encoder_hidden_states"], io["pooled_projections"], io["timestep"]);

            using var single = SD3Transformer2DModel.FromFolder(new ModelFolder(TinyTransformer), MeshRank.Single(), storage: storage);
            var expected = Run(single);
            var results = MeshRunner.Run(Config, placed =>
            {
                using var model = SD3Transformer2DModel.FromFolder(new ModelFolder(TinyTransformer), placed, storage: storage);
                int blocks = model.modules().OfType<StoredWeightLinear>().Count(l => l.WeightStorage == type);
                return (Output: Run(model), Blocks: blocks);
            });

            results.Should().HaveCount(Config.DeviceCount);
            for (int device = 0; device < results.Length; device++)
            {
                results[device].Blocks.Should().BeGreaterThan(0, $"{id} device {device} holds {type} blocks");
                AssertQuality.Close(expected, results[device].Output, ParallelModelTests.MeshFp32Pcc, ParallelModelTests.MeshFp32AbsRel,
                    $"{id} {type} transformer on device {device} against one device");
            }
        }
    }
}
