using Sd35.Errors;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;

namespace Sd35.Tensors.Checkpoints.Layouts;

/// <summary>
/// A component's config read from its tensors' names and shapes, for files that carry none (the release's single file,
/// GGUF transformers, the text-encoder files beside them), as diffusers' single-file loader infers them: depth from
/// the block count, widths from the embedders, the head width from the qk norm, MMDiT-X's dual-attention layers
/// from the blocks that have <c>attn2</c>, the position table's side from its length. Values no tensor shows take
/// the SD3 release's (VAE scaling and shift, 32 norm groups where the widths allow). Works on the model-named view of any layout.
/// </summary>
static class ConfigInference
{
    public static SD3TransformerConfig Transformer(Checkpoint checkpoint)
    {
        var keys = checkpoint.Keys.ToHashSet(StringComparer.Ordinal);
        var patch = Shape(checkpoint, "pos_embed.proj.weight", 4);
        var context = Shape(checkpoint, "context_embedder.weight", 2);
        int layers = Sd3OriginalLayout.BlockIndices(keys, "transformer_blocks.").DefaultIfEmpty(-1).Max() + 1;
        bool qkNorm = keys.Contains("transformer_blocks.0.attn.norm_q.weight");
        int headDim = qkNorm ? (int)Shape(checkpoint, "transformer_blocks.0.attn.norm_q.weight", 1)[0] : 64;
        long positions = Shape(checkpoint, "pos_embed.pos_embed", 3)[1];
        int side = (int)Math.Round(Math.Sqrt(positions));
        if ((long)side * side != positions) throw Fail(checkpoint, "pos_embed.pos_embed", $"holds {positions} positions, not a square grid");
        var config = new SD3TransformerConfig
        {
            NumLayers = layers,
            InChannels = (int)patch[1],
            PatchSize = (int)patch[2],
            AttentionHeadDim = headDim,
            NumAttentionHeads = (int)(patch[0] / headDim),
            JointAttentionDim = (int)context[1],
            CaptionProjectionDim = (int)context[0],
            PooledProjectionDim = (int)Shape(checkpoint, "time_text_embed.text_embedder.linear_1.weight", 2)[1],
            OutChannels = (int)(Shape(checkpoint, "proj_out.weight", 2)[0] / (patch[2] * patch[3])),
            PosEmbedMaxSize = side,
            // The default resolution (in latent pixels) is the release's 128 where the position table covers it.
            SampleSize = (int)Math.Min(128, (long)side * patch[2]),
            DualAttentionLayers = [.. Enumerable.Range(0, layers).Where(i => keys.Contains($"transformer_blocks.{i}.attn2.to_q.weight"))],
            QkNorm = qkNorm ? "rms_norm" : null,
        };
        config.Validate(checkpoint.Source);
        return config;
    }

    public static AutoencoderKLConfig Vae(Checkpoint checkpoint)
    {
        var keys = checkpoint.Keys.ToHashSet(StringComparer.Ordinal);
        int blocks = Sd3OriginalLayout.BlockIndices(keys, "decoder.up_blocks.").DefaultIfEmpty(-1).Max() + 1;
        // Decoder up block i works at the width of encoder down block (n-1-i); its first resnet's output shows it.
        var widths = Enumerable.Range(0, blocks).Select(i => (int)Shape(checkpoint, $"decoder.up_blocks.{blocks - 1 - i}.resnets.0.conv2.weight", 4)[0]).ToArray();
        int layers = Sd3OriginalLayout.BlockIndices(keys, "decoder.up_blocks.0.resnets.").Count() - 1;
        var config = new AutoencoderKLConfig
        {
            InChannels = keys.Contains("encoder.conv_in.weight") ? (int)Shape(checkpoint, "encoder.conv_in.weight", 4)[1] : 3,
            OutChannels = (int)Shape(checkpoint, "decoder.conv_out.weight", 4)[0],
            LatentChannels = (int)Shape(checkpoint, "decoder.conv_in.weight", 4)[1],
            BlockOutChannels = widths,
            LayersPerBlock = layers,
            // Group counts show in no shape: the release's 32 where every width allows it, else the largest that divides them all.
            NormNumGroups = Enumerable.Range(1, 32).Reverse().First(g => widths.All(w => w % g == 0)),
            ScalingFactor = 1.5305,
            ShiftFactor = 0.0609,
            UseQuantConv = keys.Contains("quant_conv.weight"),
            UsePostQuantConv = keys.Contains("post_quant_conv.weight"),
            DownBlockTypes = [.. Enumerable.Repeat("DownEncoderBlock2D", blocks)],
            UpBlockTypes = [.. Enumerable.Repeat("UpDecoderBlock2D", blocks)],
        };
        config.Validate(checkpoint.Source);
        return config;
    }

    /// <summary>CLIP text encoders: OpenAI's CLIP-L (768 wide) uses quick_gelu, OpenCLIP's bigG gelu; heads are 64 wide.</summary>
    public static ClipTextConfig Clip(Checkpoint checkpoint)
    {
        var keys = checkpoint.Keys.ToHashSet(StringComparer.Ordinal);
        var tokens = Shape(checkpoint, "text_model.embeddings.token_embedding.weight", 2);
        int hidden = (int)tokens[1];
        var config = new ClipTextConfig
        {
            VocabSize = (int)tokens[0],
            HiddenSize = hidden,
            IntermediateSize = (int)Shape(checkpoint, "text_model.encoder.layers.0.mlp.fc1.weight", 2)[0],
            ProjectionDim = keys.Contains("text_projection.weight") ? (int)Shape(checkpoint, "text_projection.weight", 2)[0] : hidden,
            NumHiddenLayers = Sd3OriginalLayout.BlockIndices(keys, "text_model.encoder.layers.").Count(),
            // No shape shows the head count: SD3's CLIPs use 64-wide heads (12 for CLIP-L, 20 for bigG); narrower models get one head.
            NumAttentionHeads = Math.Max(1, hidden / 64),
            MaxPositionEmbeddings = (int)Shape(checkpoint, "text_model.embeddings.position_embedding.weight", 2)[0],
            HiddenAct = hidden == 768 ? "quick_gelu" : "gelu",
        };
        config.Validate(checkpoint.Source);
        return config;
    }

    /// <summary>T5 v1.1 encoders (SD3's T5-XXL): gated-gelu when the feed-forward has <c>wi_0</c>; heads from the relative bias table.</summary>
    public static T5Config T5(Checkpoint checkpoint)
    {
        var keys = checkpoint.Keys.ToHashSet(StringComparer.Ordinal);
        var shared = Shape(checkpoint, keys.Contains("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight", 2);
        var bias = Shape(checkpoint, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", 2);
        bool gated = keys.Contains("encoder.block.0.layer.1.DenseReluDense.wi_0.weight");
        int heads = (int)bias[1];
        var config = new T5Config
        {
            VocabSize = (int)shared[0],
            DModel = (int)shared[1],
            NumHeads = heads,
            DKv = (int)(Shape(checkpoint, "encoder.block.0.layer.0.SelfAttention.q.weight", 2)[0] / heads),
            DFf = (int)Shape(checkpoint, gated ? "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" : "encoder.block.0.layer.1.DenseReluDense.wi.weight", 2)[0],
            NumLayers = Sd3OriginalLayout.BlockIndices(keys, "encoder.block.").Count(),
            RelativeAttentionNumBuckets = (int)bias[0],
            FeedForwardProj = gated ? "gated-gelu" : "relu",
        };
        config.Validate(checkpoint.Source);
        return config;
    }

    static long[] Shape(Checkpoint checkpoint, string key, int rank)
    {
        if (!checkpoint.Contains(key)) throw Fail(checkpoint, key, "is missing; the config cannot be inferred without it (give the component's config.json)");
        var shape = checkpoint.Entry(key).Shape;
        if (shape.Length != rank) throw Fail(checkpoint, key, $"has shape [{string.Join(", ", shape)}], expected {rank} dimensions");
        return shape;
    }

    static CheckpointException Fail(Checkpoint checkpoint, string key, string why) => new(checkpoint.Source, key, why);
}
