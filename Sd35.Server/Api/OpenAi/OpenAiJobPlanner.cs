using Sd35.Errors;
using Sd35.Pipeline;

namespace Sd35.Server.Api.OpenAi;

/// <summary>
/// A checked <c>POST /v1/images/edits</c>: the generation settings (prompt, steps, guidance, seed, size = the
/// image's), the image, the repaint mask, the strength and the number of images.
/// </summary>
/// <param name="Mask">one value per pixel, row-major, 1 = repaint, 0 = keep (OpenAI's alpha-0 pixels are 1); null: image-to-image</param>
/// <param name="Strength">how far the image is noised before denoising: 1 = from pure noise, small = close to the image</param>
public sealed record ImageEdit(GenerationRequest Settings, RgbImage Image, float[]? Mask, double Strength, int Count);

/// <summary>
/// The one seam between the OpenAI endpoints and the queue: what generation requests (one job, one PNG each) a
/// checked OpenAI request becomes. Everything before it (parsing, checking, OpenAI's error shape) and after it
/// (queueing all or none, waiting, the response) is the endpoints' job and stays as it is when these change.
/// </summary>
public sealed class OpenAiJobPlanner
{
    /// <summary>
    /// <c>n</c> images of one generation: today <c>n</c> jobs with seeds <c>seed, seed+1, …</c> (image i equals the
    /// native API's image for seed+i). A pipeline that makes a batch in one run could take all <c>n</c> here instead.
    /// </summary>
    public IReadOnlyList<GenerationRequest> Generations(GenerationRequest settings, int count) =>
        [.. Enumerable.Range(0, count).Select(i => settings with { Seed = settings.Seed + i })];

    /// <summary>
    /// The jobs of a checked edit. This build's pipeline has neither image-to-image nor inpainting, so every edit is
    /// refused here, after the whole request was checked; once the pipeline takes an initial image, a mask and a
    /// strength, this becomes <c>n</c> requests like <see cref="Generations"/>, carrying <paramref name="edit"/>'s image and mask.
    /// </summary>
    /// <exception cref="RequestException">always, today (field <c>image</c>)</exception>
    public IReadOnlyList<GenerationRequest> Edits(ImageEdit edit) =>
        throw new RequestException("image", $"{(edit.Mask is null ? "image-to-image is" : "image-to-image and inpainting are")} missing from this server's pipeline: "
            + "the edit request is valid, but nothing here can start from an image yet");
}
