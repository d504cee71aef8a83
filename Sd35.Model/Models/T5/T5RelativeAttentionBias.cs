using Sd35.Layers.Parallel;
using Sd35.Mesh;
using Sd35.Tensors.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Sd35.Layers;

namespace Sd35.Models.T5;

/// <summary>
/// The learned table of one scalar per (position bucket, head) that T5 adds to the attention scores instead
/// of position embeddings. The checkpoint stores it as an embedding <c>relative_attention_bias.weight</c>
/// [num_buckets, num_heads]; under tensor parallelism each rank keeps the columns of its own heads.
/// </summary>
sealed class T5RelativeAttentionBias : nn.Module, IShardedParameters
{
    readonly ShardLayout _heads;
    readonly int _numBuckets;
    readonly int _maxDistance;
    public readonly Parameter weight;

    public T5RelativeAttentionBias(T5Config config, IProcessGroup tp, ScalarType dtype, Device? device) : base(nameof(T5RelativeAttentionBias))
    {
        _heads = new ShardLayout(1, tp.Rank, tp.Size);
        _numBuckets = config.RelativeAttentionNumBuckets;
        _maxDistance = config.RelativeAttentionMaxDistance;
        weight = new Parameter(WeightInit.Values([_numBuckets, _heads.LocalSize(config.NumHeads)], dtype, device,
            () => zeros(_numBuckets, _heads.LocalSize(config.NumHeads), dtype, device)), requires_grad: false);
        RegisterComponents();
    }

    /// <summary>The bias for every (query, key) pair: (1, local heads, queries, keys), in the weight's dtype.</summary>
    public Tensor Compute(long queryLength, long keyLength)
    {
        using var scope = NewDisposeScope();
        // The bucket arithmetic has no meta kernels (abs, where); on the meta device it runs on the CPU, where it is tiny.
        var place = Sd35.Profiling.ShapeOnly.Is(weight) ? CPU : weight.device;
        var queries = arange(queryLength, int64, place).unsqueeze(1);
        var keys = arange(keyLength, int64, place).unsqueeze(0);
        var buckets = T5RelativePositionBuckets.Compute(keys - queries, bidirectional: true, _numBuckets, _maxDistance).to(weight.device);
        var values = Kernels.Rows(weight, buckets);
        return values.permute(2, 0, 1).unsqueeze(0).MoveToOuterDisposeScope();
    }

    public bool HoldsWhole(string parameterName) => _heads.Size == 1;

    public Tensor? ShardFromFull(string parameterName, Tensor full) => _heads.Apply(full);
}
