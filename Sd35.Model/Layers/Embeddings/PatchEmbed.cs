using Sd35.Layers.Parallel;
using Sd35.Mesh;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Layers.Embeddings;

/// <summary>
/// The patch projection of SD3's <c>PatchEmbed</c>: a p×p stride-p convolution, computed as a linear map of
/// each flattened (channel, row, column) patch so that a rank can project only its own tokens. The weight keeps
/// the checkpoint's convolution shape [D, C, p, p], with output channels split across tp.
/// </summary>
sealed class PatchProjection : StoredWeightModule, IShardedParameters
{
    readonly ShardLayout _layout;
    public Parameter bias;

    public PatchProjection(long inChannels, long dim, long patch, IProcessGroup tp, ScalarType dtype, Device? device)
        : base(nameof(PatchProjection), [dim, inChannels, patch, patch], [new ShardLayout(0, tp.Rank, tp.Size).LocalSize(dim), inChannels, patch, patch], dtype, device)
    {
        _layout = new ShardLayout(0, tp.Rank, tp.Size);
        bias = new Parameter(empty(WeightShape[0], dtype, device), requires_grad: false);
        register_parameter(nameof(bias), bias);
    }

    /// <param name="patches">[B, N, C·p·p] patches flattened in (channel, row, column) order</param>
    public override Tensor forward(Tensor patches)
    {
        using var kernel = ExpandedWeight();
        return Kernels.Linear(patches, kernel.flatten(1), bias);
    }

    /// <summary>A kernel's rows (C·p·p = 64 values for SD3) are not what ggml's blocks quantize: the kernel stays float.</summary>
    public override bool CanHoldBlocks(GgmlType type, long fullRowLength) => false;

    public override QuantizedWeight ShardBlocks(QuantizedWeight full) =>
        throw new NotSupportedException("patch kernels are not held as blocks");

    public bool HoldsWhole(string parameterName) => _layout.Size == 1;

    public Tensor? ShardFromFull(string parameterName, Tensor full) => _layout.Apply(full);
}

/// <summary>
/// diffusers' SD3 <c>PatchEmbed</c>: patchify, project, and add the centre crop of the sin-cos position table
/// (<c>pos_embed_max_size</c>²). On a mesh each rank embeds only its sequence-parallel range of tokens and its
/// tensor-parallel slice of the features: the latent arrives replicated and each rank cuts out its own patches
/// (a local slice, not communication), so the output is already laid out as [B, N/sp, D/tp].
/// </summary>
sealed class PatchEmbed : nn.Module, IShardedParameters
{
    readonly long _patch;
    readonly long _maxSize;
    readonly ShardLayout _featureLayout;
    public PatchProjection proj;
    public Tensor pos_embed;

    public PatchEmbed(long inChannels, long dim, long patch, long sampleSize, long posEmbedMaxSize, IProcessGroup tp,
        ScalarType dtype = ScalarType.Float32, Device? device = null) : base(nameof(PatchEmbed))
    {
        _patch = patch;
        _maxSize = posEmbedMaxSize;
        _featureLayout = new ShardLayout(2, tp.Rank, tp.Size);
        proj = new PatchProjection(inChannels, dim, patch, tp, dtype, device);
        // The checkpoint stores the table; only a model that is not loaded computes it (90 M sines and cosines at full size).
        pos_embed = WeightInit.Values([1, posEmbedMaxSize * posEmbedMaxSize, _featureLayout.LocalSize(dim)], dtype, device, () =>
        {
            using var table = SinCosPositionEmbedding.Table(dim, posEmbedMaxSize, sampleSize / patch, device);
            return _featureLayout.Apply(table).to(dtype, device ?? CPU);
        });
        RegisterComponents();
    }

    /// <summary>Embeds tokens [start, start + count) of the row-major patch grid of <paramref name="latent"/> [B, C, H, W].</summary>
    public Tensor Forward(Tensor latent, long start, long count)
    {
        long height = latent.shape[2] / _patch, width = latent.shape[3] / _patch;
        if (height > _maxSize || width > _maxSize)
            throw new ArgumentException($"latent of {latent.shape[2]}×{latent.shape[3]} gives a {height}×{width} patch grid, larger than pos_embed_max_size {_maxSize}");
        using var scope = NewDisposeScope();
        var patches = Patchify(latent, _patch).narrow(1, start, count);
        var tokens = proj.forward(patches.to(proj.ComputeDType));
        var position = CroppedTable(height, width).narrow(1, start, count);
        var embedded = (tokens + position).to(tokens.dtype);
        Kernels.RecordElementwise("add_position", embedded, 1, tokens, position);
        return embedded.MoveToOuterDisposeScope();
    }

    /// <summary>[B, C, H, W] → [B, (H/p)(W/p), C·p·p], tokens in row-major order, features in (c, i, j) order.</summary>
    public static Tensor Patchify(Tensor x, long p)
    {
        long b = x.shape[0], c = x.shape[1], h = x.shape[2] / p, w = x.shape[3] / p;
        return x.view(b, c, h, p, w, p).permute(0, 2, 4, 1, 3, 5).reshape(b, h * w, c * p * p);
    }

    Tensor CroppedTable(long height, long width)
    {
        long top = (_maxSize - height) / 2, left = (_maxSize - width) / 2;
        return pos_embed.view(1, _maxSize, _maxSize, -1)
            .narrow(1, top, height).narrow(2, left, width)
            .reshape(1, height * width, -1);
    }

    public bool HoldsWhole(string parameterName) => _featureLayout.Size == 1;

    public Tensor? ShardFromFull(string parameterName, Tensor full) => _featureLayout.Apply(full);
}
