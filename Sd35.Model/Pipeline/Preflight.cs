using System.Diagnostics;
using Sd35.Errors;
using Sd35.Mesh;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Tensors.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// Everything that can be checked before the first model loads, so bad input fails in seconds and never after
/// minutes of denoising: the configs (read and range-checked by <see cref="PipelineComponents"/>), every checkpoint
/// header (all shards) and its names, shapes and dtypes against the model that will be built (built on the meta
/// device: no weight is read and no memory is used), the tokenizer files, the requested size against the model's
/// limit, and that the output path is writable. The model is checked once, when a pipeline is built
/// (<see cref="Sd35.Hosting.PipelineFactory"/> calls <see cref="CheckModel"/>); each request then needs only
/// <see cref="CheckRequest"/>. Each failure is an <see cref="InputException"/>.
/// </summary>
public static class Preflight
{
    static readonly Device Meta = Sd35.Profiling.ShapeOnly.Device;

    /// <summary>Every check for one generation: <see cref="CheckRequest"/>, then <see cref="CheckModel"/>.</summary>
    /// <param name="outputPath">the file the image will be written to, or null when the caller keeps it in memory</param>
    /// <returns>how long the checks took, in seconds</returns>
    /// <param name="parallel">the layout the run will use (default: one device)</param>
    public static double Check(PipelineComponents components, GenerationRequest request, string? outputPath = null,
        ParallelConfig? parallel = null, ScalarType dtype = ScalarType.Float32) =>
        CheckRequest(components, request, outputPath, parallel, dtype) + CheckModel(components, dtype, request.NoT5);

    /// <summary>
    /// What a generation asks for, against the model: the request's fields and size (<see cref="StableDiffusion3Pipeline.Validate"/>),
    /// the output path, and the VAE encoder's weights when it starts from an image (<see cref="CheckModel"/> checks
    /// the rest of the model once, when the pipeline is built).
    /// </summary>
    /// <returns>how long the checks took, in seconds</returns>
    public static double CheckRequest(PipelineComponents components, GenerationRequest request, string? outputPath = null,
        ParallelConfig? parallel = null, ScalarType dtype = ScalarType.Float32)
    {
        var watch = Stopwatch.StartNew();
        if (outputPath is not null) OutputFile.EnsureWritable(outputPath);
        StableDiffusion3Pipeline.Validate(components, parallel ?? PipelineOptions.OneDevice, request);
        if (request.Image is not null) VerifyVaeEncoder(components, MeshRank.Single(Meta), dtype);
        return watch.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// The model without a request: the tokenizer files, and every checkpoint a text-to-image generation reads
    /// (text encoders, T5 unless <paramref name="noT5"/>, transformer, VAE decoder; the VAE encoder too with
    /// <paramref name="vaeEncoder"/>) against the model that will be built.
    /// </summary>
    /// <returns>how long the checks took, in seconds</returns>
    public static double CheckModel(PipelineComponents components, ScalarType dtype = ScalarType.Float32, bool noT5 = false, bool vaeEncoder = false)
    {
        var watch = Stopwatch.StartNew();
        var transformer = components.TransformerConfig;
        _ = components.Tokenizers();

        var meta = MeshRank.Single(Meta);
        VerifyFolder(components.TextEncoder, "$.num_hidden_layers", components.TextEncoderConfig.NumHiddenLayers, "text_model.encoder.layers.",
            () => new ClipTextModel(components.TextEncoderConfig, meta, dtype), ClipTextModel.LoadOptions);
        VerifyFolder(components.TextEncoder2, "$.num_hidden_layers", components.TextEncoder2Config.NumHiddenLayers, "text_model.encoder.layers.",
            () => new ClipTextModel(components.TextEncoder2Config, meta, dtype), ClipTextModel.LoadOptions);
        if (components is { TextEncoder3: { } t5, TextEncoder3Config: { } t5Config } && !noT5)
            VerifyFolder(t5, "$.num_layers", t5Config.NumLayers, "encoder.block.", () => new T5EncoderModel(t5Config, meta, dtype), T5EncoderModel.LoadOptions);
        VerifyFolder(components.Transformer, "$.num_layers", transformer.NumLayers, "transformer_blocks.",
            () => new SD3Transformer2DModel(transformer, meta, dtype), null);
        VerifyFolder(components.Vae, "$.block_out_channels", components.VaeConfig.BlockOutChannels.Length, "decoder.up_blocks.",
            () => new AutoencoderKLDecoder(components.VaeConfig, meta, dtype), AutoencoderKLDecoder.LoadOptions);
        if (vaeEncoder) VerifyVaeEncoder(components, meta, dtype);
        return watch.Elapsed.TotalSeconds;
    }

    static void VerifyVaeEncoder(PipelineComponents components, MeshRank meta, ScalarType dtype) =>
        VerifyFolder(components.Vae, "$.block_out_channels", components.VaeConfig.BlockOutChannels.Length, "encoder.down_blocks.",
            () => new AutoencoderKLEncoder(components.VaeConfig, meta, dtype), AutoencoderKLEncoder.LoadOptions);

    /// <summary>
    /// The largest width or height in pixels the transformer's position table covers:
    /// <c>pos_embed_max_size × patch_size × VAE scale</c> (192 × 2 × 8 = 3072 for SD3.5 Large).
    /// </summary>
    public static int MaxImageSize(SD3TransformerConfig transformer, int vaeScale) =>
        (int)Math.Min(int.MaxValue, (long)transformer.PosEmbedMaxSize * transformer.PatchSize * vaeScale);

    /// <summary>
    /// Opens the folder's checkpoint (parsing every shard's header) and matches it against the model built on the
    /// meta device. The config's block count is compared with the checkpoint's first: a config asking for two billion
    /// layers must fail here, not spend minutes building them on the meta device.
    /// </summary>
    static void VerifyFolder(ModelFolder folder, string countPath, int count, string blockPrefix, Func<nn.Module> buildOnMeta, LoadOptions? options)
    {
        using var checkpoint = folder.OpenCheckpoint();
        int stored = BlockCount(checkpoint, blockPrefix);
        if (count != stored)
            throw new ConfigException(folder.ConfigPath, countPath, $"asks for {count} blocks, but the checkpoint {checkpoint.Source} holds {stored} ({blockPrefix}N)");
        using var model = BuildOnMeta(folder, buildOnMeta);
        CheckpointLoader.Verify(model, checkpoint, options);
    }

    /// <summary>1 + the largest N among the checkpoint's keys <c>{prefix}N.…</c>, 0 when there are none.</summary>
    static int BlockCount(Checkpoint checkpoint, string prefix)
    {
        int count = 0;
        foreach (var key in checkpoint.Keys)
        {
            if (!key.StartsWith(prefix, StringComparison.Ordinal)) continue;
            int dot = key.IndexOf('.', prefix.Length);
            if (dot > prefix.Length && int.TryParse(key.AsSpan(prefix.Length, dot - prefix.Length), out int n) && n < int.MaxValue)
                count = Math.Max(count, n + 1);
        }
        return count;
    }

    /// <summary>
    /// Field checks pass each value alone; a model that still cannot be built from them (sizes that overflow, a
    /// combination the layers refuse) fails here, on the meta device, and that is the config's fault.
    /// </summary>
    static nn.Module BuildOnMeta(ModelFolder folder, Func<nn.Module> build)
    {
        try { return build(); }
        catch (Exception e) when (e is not Sd35Exception and not OutOfMemoryException)
        {
            throw new ConfigException(folder.ConfigPath, "$", $"no model can be built from this config: {e.Message.Split('\n')[0]}", e);
        }
    }
}
