using Sd35.Layers.Embeddings;
using Sd35.Mesh;
using Sd35.Tensors.Checkpoints;
using Sd35.Models.Transformer;
using Sd35.Tensors.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>
/// The benchmark shapes of fixtures/bench/README.md, with their analytic FLOP counts, so a measurement here
/// and one made with the Python reference stack describe the same work. Weights are random: values do not
/// change the time.
/// </summary>
public sealed class TransformerWorkload : IDisposable
{
    readonly Func<Tensor> _run;
    readonly DisposeScope _scope;

    public string Name { get; }
    public double Flops { get; }
    /// <summary>The reference stack's times for this shape, each labelled with its machine and date.</summary>
    public IReadOnlyList<Workloads.ReferenceTime> Reference { get; }

    TransformerWorkload(string name, DisposeScope scope, Func<Tensor> run)
    {
        Name = name;
        (Flops, Reference) = Workloads.CostOf(name);
        _scope = scope;
        _run = run;
    }

    public void Run()
    {
        using var scope = NewDisposeScope();
        _run();
    }

    /// <summary>4 blocks × 8 heads × 64, batch 2, 64×64 latents (1024 tokens) + 154 prompt tokens: 82.0 GFLOP.</summary>
    public static TransformerWorkload MmditSmall(string fixturesDir)
    {
        var scope = NewDisposeScope();
        var config = ModelConfig.Read<SD3TransformerConfig>(Path.Combine(fixturesDir, "bench", "mmdit_small.config.json"));
        manual_seed(0);
        var model = new SD3Transformer2DModel(config);
        RandomizeWeights(model);
        var latent = randn(2, 16, 64, 64);
        var prompt = randn(2, 154, config.JointAttentionDim);
        var pooled = randn(2, config.PooledProjectionDim);
        var timestep = full([2], 500f);
        return new TransformerWorkload("mmdit_small", scope, () => model.Forward(latent, prompt, pooled, timestep));
    }

    /// <summary>
    /// One full-width SD3.5 Large joint block at 1024²: 4096 image + 333 prompt tokens: 819.5 GFLOP, computed in fp32.
    /// With <paramref name="storage"/> its linears hold their weights as bf16 or as ggml blocks and expand them at each
    /// use, as a model loaded with that storage does: the workload then measures what the expansion costs.
    /// </summary>
    /// <param name="dtype">the compute dtype (bf16: the old <c>--bf16</c>, weights and arithmetic in bf16)</param>
    public static TransformerWorkload BlockSd35Large(MeshRank? rank = null, WeightStorage? storage = null, string name = "block_sd35_large",
        ScalarType dtype = ScalarType.Float32)
    {
        var scope = NewDisposeScope();
        var config = SD3TransformerConfig.SD35Large;
        manual_seed(0);
        var block = new JointTransformerBlock(config, 0, rank ?? MeshRank.Single(), dtype);
        RandomizeWeights(block);
        if (storage is not null) StoreWeights(block, storage);
        var image = randn(1, 4096, config.InnerDim).to(dtype);
        var prompt = randn(1, 333, config.InnerDim).to(dtype);
        var temb = randn(1, config.InnerDim).to(dtype);
        return new TransformerWorkload(name, scope, () => block.Forward(image, prompt, temb).Image);
    }

    /// <summary>
    /// The GEMM baseline: one 4096×2432 by 2432×2432 linear (no bias), the shape of the block's square projections:
    /// 48.5 GFLOP. Its rate in the same process tells how much of the machine a measurement had.
    /// </summary>
    public static TransformerWorkload Gemm()
    {
        var scope = NewDisposeScope();
        manual_seed(0);
        var x = randn(4096, 2432);
        var w = randn(2432, 2432);
        return new TransformerWorkload("gemm", scope, () => nn.functional.linear(x, w));
    }

    /// <summary>
    /// Re-stores the weights of <paramref name="module"/>'s storable linears as <paramref name="storage"/> says, keeping
    /// their values (rounded to the storage): what the loader does with a checkpoint, without writing one.
    /// </summary>
    static void StoreWeights(nn.Module module, WeightStorage storage)
    {
        using var noGrad = no_grad();
        foreach (var layer in module.modules().OfType<Sd35.Layers.StoredWeightLinear>())
        {
            using var values = layer.ExpandedWeight().clone();
            if (storage.Quantize is { } type && layer.CanHoldBlocks(type, layer.FullWeightShape[^1]))
            {
                using var full = QuantizedWeight.Quantize(values, type);
                layer.SetWeightBlocks(layer.ShardBlocks(full));
                continue;
            }
            layer.StoreWeightAs(storage.FloatStorageFor(layer.ComputeDType));
            layer.weight.copy_(values);
        }
    }

    /// <summary>N(0, 1/fan_in) weights, so activations stay in range as in a trained model.</summary>
    static void RandomizeWeights(nn.Module module)
    {
        using var noGrad = no_grad();
        foreach (var (name, p) in module.named_parameters())
        {
            if (p.dim() >= 2) p.normal_(0, 1.0 / Math.Sqrt(p.numel() / p.shape[0]));
            else if (name.EndsWith("bias")) p.normal_(0, 0.02);
        }
    }

    public void Dispose() => _scope.Dispose();
}
