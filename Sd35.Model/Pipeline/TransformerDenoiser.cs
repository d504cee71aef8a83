using Sd35.Models.Transformer;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// Guidance on one device, as diffusers does it: the unconditional and conditional passes run as one batch
/// [negative ; positive], then the halves are combined. With skip-layer guidance active at a step, one more
/// conditional pass runs with the guidance layers skipped.
/// </summary>
public sealed class TransformerDenoiser : IDisposable
{
    readonly SD3Transformer2DModel _transformer;
    readonly Tensor _promptEmbeds, _pooled;           // batched [negative ; positive] under guidance
    readonly Tensor _positiveEmbeds, _positivePooled;
    readonly double _scale;
    readonly SkipLayerGuidance? _skip;
    readonly bool _guided;

    public TransformerDenoiser(SD3Transformer2DModel transformer, PromptEmbeddings positive, PromptEmbeddings? negative,
        double guidanceScale, SkipLayerGuidance? skipLayerGuidance)
    {
        _transformer = transformer;
        _scale = guidanceScale;
        _skip = skipLayerGuidance;
        _guided = negative is not null;
        _positiveEmbeds = positive.PromptEmbeds.alias();
        _positivePooled = positive.PooledPromptEmbeds.alias();
        _promptEmbeds = negative is null ? _positiveEmbeds.alias() : cat([negative.PromptEmbeds, positive.PromptEmbeds], 0);
        _pooled = negative is null ? _positivePooled.alias() : cat([negative.PooledPromptEmbeds, positive.PooledPromptEmbeds], 0);
    }

    /// <summary>The guided velocity for <paramref name="latents"/> at <paramref name="timestep"/>; <paramref name="skipLayers"/> when skip-layer guidance applies at this step.</summary>
    public Tensor Predict(Tensor latents, float timestep, bool skipLayers)
    {
        using var scope = NewDisposeScope();
        if (!_guided) return Run(latents, _positiveEmbeds, _positivePooled, timestep, null).MoveToOuterDisposeScope();

        var prediction = Run(cat([latents, latents], 0), _promptEmbeds, _pooled, timestep, null).chunk(2, 0);
        var (uncond, cond) = (prediction[0], prediction[1]);
        var guided = Guidance.Classifier(uncond, cond, _scale);
        if (skipLayers && _skip is not null)
        {
            var skipped = Run(latents, _positiveEmbeds, _positivePooled, timestep, _skip.Layers);
            guided = Guidance.SkipLayer(guided, cond, skipped, _skip.Scale);
        }
        return guided.MoveToOuterDisposeScope();
    }

    Tensor Run(Tensor latents, Tensor embeds, Tensor pooled, float timestep, int[]? skip)
    {
        using var t = full([latents.shape[0]], timestep, float32);
        return _transformer.Forward(latents, embeds, pooled, t, skip);
    }

    public void Dispose()
    {
        _promptEmbeds.Dispose();
        _pooled.Dispose();
        _positiveEmbeds.Dispose();
        _positivePooled.Dispose();
    }
}
